"""Rebuild a service's read models from the streams: its durable consumers are deleted, so
that when the service starts again each is created anew and given every event the streams
hold from the first one on.

    python -m shared.rebuild records [--dry-run]

Run it with the service stopped (every replica), after its database was restored from a
backup or created empty; the service's own settings (`<PREFIX>_NATS_URL`) name the
servers. Events the restored database already handled are in its inbox and skipped;
the rest are handled again in order. This relies on the streams keeping every event
(retention by limits with no maximum age, deploy/README.md "Back from disaster").
"""

import argparse
import asyncio
import importlib
import sys
from typing import Any

import nats
from nats.js.errors import NotFoundError


async def forget_consumers(servers: list[str], handlers: list[Any]) -> list[str]:
    """Delete each handler's durable consumer; the names of those that existed."""
    connection = await nats.connect(servers=servers, connect_timeout=5)
    deleted = []
    try:
        js = connection.jetstream(timeout=10)
        for handler in handlers:
            try:
                await js.delete_consumer(handler.contract.stream(), handler.durable)
            except NotFoundError:
                continue
            deleted.append(handler.durable)
    finally:
        await connection.close()
    return deleted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.rebuild", description=__doc__)
    parser.add_argument("service", choices=("reception", "workorders", "followup", "records"))
    parser.add_argument("--dry-run", action="store_true", help="list the consumers only")
    args = parser.parse_args(argv)
    spec = importlib.import_module(f"services.{args.service}.main").SPEC
    settings = importlib.import_module(f"services.{args.service}.config").Settings()
    handlers = spec.subscribers.handlers
    if args.dry_run:
        for handler in handlers:
            print(f"{handler.contract.stream()}\t{handler.durable}")
        return 0
    deleted = asyncio.run(forget_consumers(settings.nats_servers, handlers))
    print(
        f"{args.service}: {len(deleted)} of {len(handlers)} consumers deleted; "
        "start the service to replay the streams"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
