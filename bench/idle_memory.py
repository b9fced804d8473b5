"""Resident memory of each service process once the stack is up and idle.

.venv/bin/python -m bench.idle_memory [--settle 5]
"""

import argparse
import contextlib
import time

from bench.common import env_option, pid_of, running_stack, status_kb, table, wait_ready

TARGET_MB = 120.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--settle", type=float, default=5.0, help="idle seconds after all are ready"
    )
    parser.add_argument(
        "--env",
        action="append",
        metavar="NAME=VALUE",
        help="extra environment for every service, {SERVICE} becomes its prefix "
        "(repeatable), e.g. --env {SERVICE}_CONSUMER_BATCH=16",
    )
    args = parser.parse_args()
    if not 0 <= args.settle <= 600:
        parser.error("--settle must be 0..600 seconds")
    with running_stack(extra_env=env_option(args.env)) as stack:
        wait_ready(stack)
        time.sleep(args.settle)
        rows = []
        for name in stack.services:
            pid = pid_of(stack, name)
            rss = status_kb(pid, "VmRSS") / 1024
            hwm = status_kb(pid, "VmHWM") / 1024
            rows.append([name, pid, rss, hwm, "ok" if rss <= TARGET_MB else "OVER"])
        if stack.nats.proc is not None:
            pid = stack.nats.proc.pid
            rows.append(
                [
                    "nats-server (context)",
                    pid,
                    status_kb(pid, "VmRSS") / 1024,
                    status_kb(pid, "VmHWM") / 1024,
                    "—",
                ]
            )
    print(f"### Idle memory after ready + {args.settle:g} s (target ≤ {TARGET_MB:g} MB each)")
    print()
    print(table(["process", "pid", "VmRSS MB", "VmHWM MB", "target"], rows))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
