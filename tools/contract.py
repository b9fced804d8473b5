"""The contract leg (`make test-contract`): schemathesis against the four services started as
real processes on a real nats-server, each held to its own OpenAPI document.

Phases examples, coverage, fuzzing and stateful; checks not_a_server_error,
response_schema_conformance, status_code_conformance, content_type_conformance and
negative_data_rejection; a token per operation with the roles it lets in; bounded in time
(`CONTRACT_MAX_TIME` seconds per service, 60 by default). Records' outbound ERP webhooks
(endpoint creation, ping, replay) go to a loopback receiver started here
(tools/contract_hooks.py forces every target to it), and the run fails unless that
receiver was called. Exit status 0 only with no finding on any service; the reports are
under var/contract/<service>/.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from shared.auth import issue_dev_token
from shared.settings import ServiceSettings
from tools.processes import ROOT, SERVICES, NatsServer, ServiceProcess

CHECKS = (
    "not_a_server_error,response_schema_conformance,status_code_conformance,"
    "content_type_conformance,negative_data_rejection"
)
PHASES = "examples,coverage,fuzzing,stateful"
# Endless Server-Sent Events: schemathesis would read each until its timeout. They are
# held to their documented answers by `check_event_streams` instead.
STREAMS = ("/board/events", "/board/lounge/events")
REPORTS = ROOT / "var" / "contract"


class Receiver:
    """A loopback HTTP server standing in for the ERP: answers 200 to every POST."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                calls.append(self.headers.get("webhook-id") or "")
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/erp/webhooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def seed_webhooks(records: str, receiver: Receiver, secret: str) -> dict[str, str]:
    """An endpoint at the receiver and one delivery to it (what ping and replay name), and
    an ERP source whose secret signs the inbound bodies."""
    headers = {"Authorization": f"Bearer {issue_dev_token(secret, role='manager')}"}
    with httpx.Client(base_url=records, headers=headers, timeout=10) as client:
        r = client.post(
            "/webhooks/endpoints",
            json={"url": receiver.url, "event_types": ["invoice.settled"]},
        )
        r.raise_for_status()
        endpoint = r.json()["id"]
        r = client.post(f"/webhooks/endpoints/{endpoint}/ping")
        r.raise_for_status()
        delivery = r.json()["id"]
        # In another branch than the tokens schemathesis sends: its own calls (a rotated
        # secret, a source switched off) cannot take the signing secret away mid-run.
        other = {
            "Authorization": f"Bearer {issue_dev_token(secret, role='manager', branch='BR02')}"
        }
        r = client.post("/webhooks/erp-sources", json={"name": "Contract ERP"}, headers=other)
        r.raise_for_status()
        source, source_secret = r.json()["id"], r.json()["secret"]
    deadline = time.monotonic() + 10
    while not receiver.calls and time.monotonic() < deadline:
        time.sleep(0.05)  # a thread's poll with a deadline, not a wait for a result
    if not receiver.calls:
        raise RuntimeError("the receiver got no ping from records")
    return {
        "CONTRACT_ENDPOINT_ID": endpoint,
        "CONTRACT_DELIVERY_ID": delivery,
        "CONTRACT_ERP_SOURCE_ID": source,
        "CONTRACT_ERP_SECRET": source_secret,
    }


def check_event_streams(workorders: str, secret: str) -> list[str]:
    """Each stream answers 200 text/event-stream with its first event to a reader, and a
    problem (401) to no one."""
    findings: list[str] = []
    token = issue_dev_token(secret, role="screen")
    with httpx.Client(base_url=workorders, timeout=10) as client:
        for path in STREAMS:
            headers = {"Authorization": f"Bearer {token}"}
            with client.stream("GET", path, headers=headers) as r:
                media = r.headers.get("content-type", "").split(";")[0]
                first = next(r.iter_text(), "") if r.status_code == 200 else ""
                if r.status_code != 200 or media != "text/event-stream" or not first:
                    findings.append(f"GET {path}: {r.status_code} {media} {first[:80]!r}")
            r = client.get(path)
            if r.status_code != 401 or not r.headers.get("content-type", "").startswith(
                "application/problem+json"
            ):
                findings.append(f"GET {path} without a token: {r.status_code}")
    print(f"== workorders' event streams: {findings or 'as documented'}", flush=True)
    return findings


def run_schemathesis(name: str, url: str, env: dict[str, str], max_time: int) -> int:
    reports = REPORTS / name
    shutil.rmtree(reports, ignore_errors=True)
    command = [
        str(Path(sys.executable).parent / "st"),
        "--config-file",
        str(ROOT / "tools" / "contract.toml"),
        "run",
        f"{url}/openapi.json",
        "--phases",
        PHASES,
        "--checks",
        CHECKS,
        "--max-time",
        str(max_time),
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--seed",
        env.get("CONTRACT_SEED", "20261207"),
        "--suppress-health-check",
        "all",
        "--report",
        "junit,ndjson",
        "--report-dir",
        str(reports),
        *(arg for path in STREAMS for arg in ("--exclude-path", path)),
    ]
    print(f"== {name}: {' '.join(command[1:])}", flush=True)
    return subprocess.call(command, env=env, cwd=ROOT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("services", nargs="*", default=list(SERVICES))
    args = parser.parse_args()
    max_time = int(os.environ.get("CONTRACT_MAX_TIME", "60"))
    secret = ServiceSettings().jwt_secret
    root = Path(tempfile.mkdtemp(prefix="contract-"))
    nats = NatsServer(root / "nats").start()
    processes: dict[str, ServiceProcess] = {}
    failed: list[str] = []
    try:
        with Receiver() as receiver:
            for name in SERVICES:
                prefix = name.upper()
                env = {
                    f"{prefix}_DATABASE_URL": f"sqlite+aiosqlite:///{root / f'{name}.db'}",
                    f"{prefix}_NATS_URL": nats.url,
                    f"{prefix}_LOG_LEVEL": "WARNING",
                    # records' outbound webhooks may reach the loopback receiver
                    "RECORDS_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
                    "RECORDS_WEBHOOK_ALLOW_HTTP": "true",  # the receiver is plain http
                }
                processes[name] = ServiceProcess(name, env, root / "logs")
            processes["reception"].env["RECEPTION_RECORDS_URL"] = processes["records"].url
            for svc in processes.values():
                svc.start(wait=False)
            for svc in processes.values():
                svc.wait_healthy()
            seeded = seed_webhooks(processes["records"].url, receiver, secret)
            before = len(receiver.calls)
            env = {
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "SCHEMATHESIS_HOOKS": "tools.contract_hooks",
                "CONTRACT_JWT_SECRET": secret,
                "CONTRACT_RECEIVER_URL": receiver.url,
                **seeded,
            }
            for name in args.services:
                if run_schemathesis(name, processes[name].url, env, max_time) != 0:
                    failed.append(name)
                if name == "workorders" and check_event_streams(processes[name].url, secret):
                    failed.append("workorders' event streams")
            if "records" in args.services:
                sent = len(receiver.calls) - before
                print(f"== the loopback receiver got {sent} webhook requests during the run")
                if sent == 0:
                    failed.append("records (no webhook reached the receiver)")
            for svc in processes.values():
                if svc.proc is not None and svc.proc.poll() is not None:
                    failed.append(f"{svc.name} exited: {svc.log_tail()}")
    finally:
        for svc in processes.values():
            svc.stop()
        nats.stop()
        shutil.rmtree(root, ignore_errors=True)
    print("== contract: " + ("findings in " + ", ".join(failed) if failed else "no findings"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
