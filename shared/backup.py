"""Backups of a service's database, taken while the service runs, and their restore.

    python -m shared.backup dump --database-url URL --to FILE
    python -m shared.backup restore --database-url URL --from FILE
    python -m shared.backup streams-dump --servers URLS --to DIR
    python -m shared.backup streams-restore --servers URLS --from DIR

SQLite: SQLite's online backup (a consistent copy while the service writes; the WAL's
committed pages included). PostgreSQL: `pg_dump --format=custom` (one consistent snapshot
under MVCC) and `pg_restore --clean --if-exists` into the database the URL names (which
must exist; create it empty first). The URL is the service's own `<PREFIX>_DATABASE_URL`;
the driver part (`+aiosqlite`, `+asyncpg`) is ignored.

Streams: every message of every stream (each service's and the dead letters), with its
subject, headers and data, one JSON Lines file per stream, and the streams' settings. A
restore creates missing streams with those settings and publishes the messages in their
order with their `Nats-Msg-Id` (the event id), so a restore repeated within the duplicate
window adds nothing. Sequence numbers start again from 1: consumers are created anew
(`python -m shared.rebuild <service>`), and the inboxes skip what was handled.

A restore is done with the service stopped. What the service received from the streams
after the backup comes back from the streams: see deploy/README.md, "Back from disaster".
"""

import argparse
import asyncio
import base64
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import nats
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError
from sqlalchemy.engine import make_url


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database:
        raise SystemExit(f"no SQLite file in {url!r}")
    return Path(database)


def _pg(url: str) -> tuple[list[str], dict[str, str]]:
    """libpq's connection options and environment for a SQLAlchemy URL."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = parsed.password
    options = ["--host", parsed.host or "127.0.0.1", "--port", str(parsed.port or 5432)]
    if parsed.username:
        options += ["--username", parsed.username]
    return [*options, "--dbname", parsed.database or ""], env


def dump(url: str, to: Path) -> None:
    to.parent.mkdir(parents=True, exist_ok=True)
    if make_url(url).get_backend_name() == "sqlite":
        partial = to.with_name(to.name + ".partial")
        source = sqlite3.connect(_sqlite_path(url))
        try:
            target = sqlite3.connect(partial)
            try:
                source.backup(target)
            finally:
                target.close()
        finally:
            source.close()
        partial.replace(to)  # a backup file is whole or absent
        return
    options, env = _pg(url)
    subprocess.run(
        ["pg_dump", "--format=custom", "--no-owner", "--file", str(to), *options],
        check=True,
        env=env,
    )


def restore(url: str, source: Path) -> None:
    if not source.exists():
        raise SystemExit(f"no backup at {source}")
    if make_url(url).get_backend_name() == "sqlite":
        path = _sqlite_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        for leftover in (Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)
        backup = sqlite3.connect(source)
        try:
            target = sqlite3.connect(path)
            try:
                backup.backup(target)
            finally:
                target.close()
        finally:
            backup.close()
        return
    options, env = _pg(url)
    subprocess.run(
        ["pg_restore", "--clean", "--if-exists", "--no-owner", "--exit-on-error", *options,
         str(source)],
        check=True,
        env=env,
    )  # fmt: skip


async def dump_streams(servers: list[str], to: Path) -> dict[str, int]:
    """Every stream's messages into `<to>/<STREAM>.jsonl` and its settings into
    `<to>/<STREAM>.json`; the count per stream."""
    to.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (a command-line tool)
    connection = await nats.connect(servers=servers, connect_timeout=5)
    counts = {}
    try:
        js = connection.jetstream(timeout=10)
        for info in await js.streams_info():
            name = info.config.name
            assert name is not None
            config = info.config.as_dict()
            (to / f"{name}.json").write_text(json.dumps(config, indent=1))
            partial = to / f"{name}.jsonl.partial"
            count = 0
            with partial.open("w") as out:
                if info.state.messages:
                    for seq in range(info.state.first_seq, info.state.last_seq + 1):
                        try:
                            message = await js.get_msg(name, seq)
                        except NotFoundError:
                            continue  # deleted (a replayed dead letter)
                        record = {
                            "subject": message.subject,
                            "headers": {
                                str(getattr(k, "value", k)): str(v)
                                for k, v in (message.headers or {}).items()
                            },
                            "data": base64.b64encode(message.data or b"").decode(),
                        }
                        out.write(json.dumps(record) + "\n")
                        count += 1
            partial.replace(to / f"{name}.jsonl")
            counts[name] = count
    finally:
        await connection.close()
    return counts


async def restore_streams(servers: list[str], source: Path) -> dict[str, int]:
    connection = await nats.connect(servers=servers, connect_timeout=5)
    counts = {}
    try:
        js = connection.jetstream(timeout=10)
        for settings in sorted(source.glob("*.json")):  # noqa: ASYNC240
            config = StreamConfig.from_response(json.loads(settings.read_text()))
            try:
                await js.stream_info(config.name or "")
            except NotFoundError:
                await js.add_stream(config)
            count = 0
            with (source / f"{config.name}.jsonl").open() as lines:
                for line in lines:
                    record = json.loads(line)
                    await js.publish(
                        record["subject"],
                        base64.b64decode(record["data"]),
                        headers=record["headers"] or None,
                    )
                    count += 1
            counts[config.name or ""] = count
    finally:
        await connection.close()
    return counts


def _servers(value: str | None) -> list[str]:
    raw = value or os.environ.get("NATS_URL") or "nats://127.0.0.1:4222"
    return [part.strip() for part in raw.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.backup", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    dumping = sub.add_parser("dump", help="back the database up into a file")
    dumping.add_argument("--database-url", required=True)
    dumping.add_argument("--to", required=True, type=Path)
    restoring = sub.add_parser("restore", help="restore the database from a file")
    restoring.add_argument("--database-url", required=True)
    restoring.add_argument("--from", dest="source", required=True, type=Path)
    streams_out = sub.add_parser("streams-dump", help="every stream's messages into a folder")
    streams_out.add_argument("--servers", help="NATS URLs, comma-separated (default NATS_URL)")
    streams_out.add_argument("--to", required=True, type=Path)
    streams_in = sub.add_parser("streams-restore", help="publish a folder's messages again")
    streams_in.add_argument("--servers", help="NATS URLs, comma-separated (default NATS_URL)")
    streams_in.add_argument("--from", dest="source", required=True, type=Path)
    args = parser.parse_args(argv)
    if args.command.startswith("streams-"):
        if args.command == "streams-dump":
            counts = asyncio.run(dump_streams(_servers(args.servers), args.to))
        else:
            counts = asyncio.run(restore_streams(_servers(args.servers), args.source))
        for stream, count in sorted(counts.items()):
            print(f"{stream}\t{count}")
        return 0
    if args.command == "dump":
        dump(args.database_url, args.to)
        print(f"backed up to {args.to}")
    else:
        restore(args.database_url, args.source)
        print(f"restored from {args.source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
