"""`make run`: nats-server, the four services on SQLite under var/ and the staff app, a demo
branch day (only into an empty branch), the staff app's URL first, then docs URLs and a
development token; Ctrl-C stops everything.

Any service can be pointed elsewhere with its own variables, e.g.
RECEPTION_DATABASE_URL=postgresql+asyncpg://... or WORKSHOP_NATS_URL=nats://host:4222
(an external NATS, or a cluster's nodes comma-separated: then no local nats-server is
started)."""

import os
import signal
import sys
import threading

from services.reception.config import Settings as ReceptionSettings
from shared.auth import issue_dev_token
from shared.settings import ServiceSettings
from tools import demo
from tools.processes import ROOT, SERVICES, NatsServer, ServiceProcess

VAR = ROOT / "var"
PORTS = {"reception": 8001, "workorders": 8002, "followup": 8003, "records": 8004}
STAFF_PORT = int(os.environ.get("WORKSHOP_STAFF_PORT", "8000"))
NATS_PORT = int(os.environ.get("WORKSHOP_NATS_PORT", "4223"))


def main() -> int:
    VAR.mkdir(exist_ok=True)
    external_nats = os.environ.get("WORKSHOP_NATS_URL")
    nats = None
    if not external_nats:
        nats = NatsServer(VAR / "nats", port=NATS_PORT).start()
    nats_url = external_nats or f"nats://127.0.0.1:{NATS_PORT}"
    services = {}
    for name in SERVICES:
        prefix = name.upper()
        env = {
            f"{prefix}_NATS_URL": os.environ.get(f"{prefix}_NATS_URL", nats_url),
            f"{prefix}_DATABASE_URL": os.environ.get(
                f"{prefix}_DATABASE_URL", f"sqlite+aiosqlite:///{VAR / f'{name}.db'}"
            ),
        }
        services[name] = ServiceProcess(name, env, VAR / "logs", port=PORTS[name])
    staff_env = {f"STAFF_{name.upper()}_URL": svc.url for name, svc in services.items()}
    staff_env["STAFF_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{STAFF_PORT}"
    staff_env.update({k: v for k, v in os.environ.items() if k.startswith("STAFF_")})
    services["staff"] = ServiceProcess("staff", staff_env, VAR / "logs", port=STAFF_PORT)
    stopping = threading.Event()
    try:
        for svc in services.values():
            svc.start(wait=False)
        for svc in services.values():
            svc.wait_healthy(60)
        secret = ServiceSettings().jwt_secret
        urls = {name: svc.url for name, svc in services.items()}
        loaded = demo.load(urls, secret, ReceptionSettings().time_zone)
        print(demo.describe(loaded))
        print("\nWorkshop platform is running (logs in var/logs/):")
        print(f"\n  Open the staff app:  {services['staff'].url}/\n")
        print(f"  NATS        {nats_url}")
        for name, svc in services.items():
            if name != "staff":
                print(f"  {name:<11} {svc.url}/docs")
        token = issue_dev_token(secret, role=["advisor", "manager"], ttl=24 * 3600)
        print(f"\nDevelopment token (advisor, manager; branch BR01; 24 h):\n{token}\n")
        print("Other roles: make token ROLE=foreman   Stop: Ctrl-C")
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        while not stopping.is_set():
            for name, svc in services.items():
                if svc.proc is not None and svc.proc.poll() is not None:
                    print(f"{name} stopped unexpectedly:\n{svc.log_tail()}", file=sys.stderr)
                    return 1
            stopping.wait(1)
    except KeyboardInterrupt:
        pass
    finally:
        print("\nStopping…")
        for svc in services.values():
            svc.stop()
        if nats:
            nats.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
