"""What one clocking costs the workorders process, in instructions counted by callgrind: a
measure this machine's noise (its speed moves by a quarter within an hour) does not move.

Makes a throwaway database (PostgreSQL with `WORKSHOP_TEST_BACKEND=postgres`, else SQLite),
migrates it and seeds 200 open orders with jobs dispatched to `--technicians` (4)
technicians, all natively. Then it runs a second process under
`valgrind --tool=callgrind` with instrumentation off: that process does, in-process, what a
clock-on and a clock-off request do below HTTP (the use case in `Database.transaction`,
with the board's and the outbox's commit hooks), warms up, and counts instructions only
while the technicians clock on and off `--rounds` times each, all at once. Prints
instructions per clocking (clock-on or clock-off) and, from a native run of the same
rounds, CPU ms per clocking.

Then the whole request: the workorders service as a real process under callgrind, counted
while the same technicians clock on and off over HTTP `--http-rounds` times each (uvicorn,
middleware, routing, dependencies, the use case, the commit and the outbox relay's publish
to a real nats-server). No status-board screens are connected: how many changes one push
to the screens carries depends on the request rate, which callgrind slows fifty-fold;
`bench/workorders_board.py` measures that part natively.

    WORKSHOP_TEST_BACKEND=postgres .venv/bin/python -m bench.clocking_instructions \\
        [--rounds 20] [--technicians 4] [--http-rounds 10]

Needs valgrind (Debian's package) for the count; without it (or with `--no-callgrind`) it
prints the CPU time only.
"""

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import table
from bench.loadgen import Connection, build_request
from bench.workorders_board import seed
from services.workorders import workshop
from services.workorders.main import SPEC
from services.workorders.schemas import ClockOff
from shared.auth import Role, User
from shared.db import Database
from shared.events import utcnow
from shared.idempotency import IDEMPOTENCY_MODEL
from shared.migrations import upgrade
from shared.outbox import OUTBOX_MODEL
from tests.harness import backend, create_pg_database, drop_pg_database, token
from tools.processes import NatsServer, ServiceProcess


def _database(url: str) -> Database:
    return Database(
        url, info={OUTBOX_MODEL: SPEC.outbox_model, IDEMPOTENCY_MODEL: SPEC.idempotency_model}
    )


async def prepare(url: str, technicians: int) -> list[dict[str, Any]]:
    db = _database(url)
    try:
        await upgrade(db, SPEC.migrations)
    finally:
        await db.dispose()
    return await seed(url, 1000, 200, technicians)


def _block_until(path: Path) -> None:
    """Hold the whole process (its event loop too, so nothing runs uncounted or counted)."""
    while not path.exists():
        time.sleep(0.02)


async def clock(url: str, mine: list[dict[str, Any]], rounds: int, handshake: Path | None) -> float:
    """Warm up, then clock `rounds` times per technician; returns CPU seconds spent."""
    db = _database(url)
    users = [
        User(id=job["technician"], name="t", roles=frozenset({Role.technician}), branch="BR01")
        for job in mine
    ]
    body = ClockOff.model_validate({"reason": "break"})

    async def technician(i: int, times: int) -> None:
        job_id = uuid.UUID(str(mine[i]["job_id"]))
        for _ in range(times):
            async with db.hot_transaction() as tx:
                await workshop.clock_on(tx, job_id, users[i], utcnow())
            async with db.hot_transaction() as tx:
                await workshop.clock_off(tx, job_id, body, users[i], utcnow())

    try:
        await asyncio.gather(*(technician(i, 3) for i in range(len(mine))))
        if handshake is not None:  # the parent switches counting on, then says go
            (handshake / "ready").touch()
            _block_until(handshake / "go")
        started = time.process_time()
        await asyncio.gather(*(technician(i, rounds) for i in range(len(mine))))
        spent = time.process_time() - started
        if handshake is not None:
            (handshake / "done").touch()
            _block_until(handshake / "stop")
        return spent
    finally:
        await db.dispose()


def _wait_for(path: Path, proc: subprocess.Popen[bytes]) -> None:
    while not path.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"the measured process ended early ({proc.returncode})")
        time.sleep(0.05)


def count_instructions(url: str, jobs: Path, rounds: int) -> int:
    with tempfile.TemporaryDirectory(prefix="clocking-callgrind-") as tmp:
        handshake = Path(tmp)
        out = handshake / "callgrind.out"
        proc = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-m",
                "bench.clocking_instructions",
                "--child",
                url,
                str(jobs),
                str(rounds),
                str(handshake),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONHASHSEED": "0"},  # the same dict layouts every run
        )
        _wait_for(handshake / "ready", proc)
        subprocess.run(
            ["callgrind_control", "-i", "on", str(proc.pid)], check=True, capture_output=True
        )
        (handshake / "go").touch()
        _wait_for(handshake / "done", proc)
        subprocess.run(
            ["callgrind_control", "-i", "off", str(proc.pid)], check=True, capture_output=True
        )
        (handshake / "stop").touch()
        if proc.wait() != 0:
            raise RuntimeError(f"the measured process failed ({proc.returncode})")
        for line in out.read_text().splitlines():
            if line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError("callgrind wrote no totals")


async def _clock_over_http(port: int, mine: list[dict[str, Any]], rounds: int) -> None:
    async def technician(job: dict[str, Any]) -> None:
        conn = Connection("127.0.0.1", port)
        headers = {"Authorization": f"Bearer {token('technician', 'BR01', sub=job['technician'])}"}
        on = build_request("POST", f"/jobs/{job['job_id']}/clock-on", "127.0.0.1", port, headers)
        off = build_request(
            "POST",
            f"/jobs/{job['job_id']}/clock-off",
            "127.0.0.1",
            port,
            headers,
            b'{"reason":"break"}',
        )
        try:
            for _ in range(rounds):
                for raw, expected in ((on, 201), (off, 200)):
                    status, body = await conn.request(raw)
                    if status != expected:
                        raise RuntimeError(f"unexpected {status}: {body[:300]!r}")
        finally:
            await conn.close()

    await asyncio.gather(*(technician(job) for job in mine))


def count_request_instructions(url: str, mine: list[dict[str, Any]], rounds: int) -> int:
    """The whole workorders process under callgrind, counting while the technicians clock
    on and off over HTTP: uvicorn, middleware, routing, dependencies, the use case, the
    commit and what the commit sets off (the outbox relay publishing to NATS). Timers that
    run by the wall clock are set far apart: under callgrind the process runs some fifty
    times slower, and a promise re-check every two seconds would be counted fifty times
    more often than in real use."""
    with tempfile.TemporaryDirectory(prefix="clocking-http-") as tmp:
        out = Path(tmp) / "callgrind.out"
        nats = NatsServer(Path(tmp) / "nats").start()
        service = ServiceProcess(
            "workorders",
            {
                "WORKORDERS_DATABASE_URL": url,
                "WORKORDERS_NATS_URL": nats.url,
                "WORKORDERS_LOG_LEVEL": "INFO",
                "WORKORDERS_PROMISE_CHECK_INTERVAL": "3600",
                "WORKORDERS_PROMISE_RECHECK_DELAY": "3600",
                "WORKORDERS_RELAY_POLL_INTERVAL": "3600",
                "PYTHONHASHSEED": "0",
            },
            Path(tmp) / "logs",
            wrapper=(
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out}",
            ),
        )
        try:
            service.start(wait=False)
            service.wait_healthy(timeout=300)
            assert service.proc is not None
            asyncio.run(_clock_over_http(service.port, mine, 3))  # warm up
            control = ["callgrind_control", "-i"]
            subprocess.run([*control, "on", str(service.proc.pid)], check=True, capture_output=True)
            asyncio.run(_clock_over_http(service.port, mine, rounds))
            subprocess.run(
                [*control, "off", str(service.proc.pid)], check=True, capture_output=True
            )
        finally:
            service.stop()
            nats.stop()
        for line in out.read_text().splitlines():
            if line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError("callgrind wrote no totals")


def main(args: argparse.Namespace) -> None:
    if args.child:
        url, jobs, rounds, handshake = args.child
        mine = json.loads(Path(jobs).read_text())
        asyncio.run(clock(url, mine, int(rounds), Path(handshake)))
        return
    callgrind = not args.no_callgrind
    if callgrind and not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        print("valgrind is not installed (apt-get install valgrind): CPU time only")
        callgrind = False
    with tempfile.TemporaryDirectory(prefix="clocking-bench-") as tmp:
        if backend() == "postgres":
            url = asyncio.run(create_pg_database("bench_clocking"))
        else:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'workorders.db'}"
        try:
            mine = asyncio.run(prepare(url, args.technicians))
            jobs = Path(tmp) / "jobs.json"
            jobs.write_text(json.dumps(mine, default=str))
            clockings = 2 * args.rounds * args.technicians
            cpu = asyncio.run(clock(url, mine, args.rounds, None))
            rows = [["CPU per clocking (native run)", f"{cpu / clockings * 1000:.3f} ms"]]
            if callgrind:
                total = count_instructions(url, jobs, args.rounds)
                rows.insert(0, ["instructions per clocking", f"{total // clockings:,}"])
                over_http = 2 * args.http_rounds * args.technicians
                total = count_request_instructions(url, mine, args.http_rounds)
                rows.append(
                    [
                        "instructions per clocking request, whole process (HTTP on)",
                        f"{total // over_http:,}",
                    ]
                )
        finally:
            if backend() == "postgres":
                asyncio.run(drop_pg_database(url))
    print(
        f"\n## One clocking below HTTP ({backend()}, {args.technicians} technicians at once, "
        f"{clockings} clock-ons and clock-offs)\n"
    )
    print(table(["measure", "value"], rows))


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--technicians", type=int, default=4)
    parser.add_argument("--http-rounds", type=int, default=10)
    parser.add_argument("--no-callgrind", action="store_true")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    main(parse())
