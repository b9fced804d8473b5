"""Backups (shared/backup.py): a database copied while it is written and restored; every
stream's messages dumped from one nats-server and restored into an empty one."""

import asyncio
from pathlib import Path

import nats
import pytest
from sqlalchemy import text

from shared import backup
from shared.db import Database
from shared.events import DEAD_LETTER_STREAM
from tests.harness import NatsServer

pytestmark = [pytest.mark.asyncio]


@pytest.mark.store
async def test_a_database_is_backed_up_while_written_and_restored(
    database_url: str, tmp_path: Path
) -> None:
    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE kept (id INTEGER PRIMARY KEY, note TEXT)"))
            await conn.execute(
                text("INSERT INTO kept (id, note) VALUES (:id, :note)"),
                [{"id": i, "note": f"行{i}"} for i in range(500)],
            )

        async def writer() -> None:
            for i in range(500, 600):
                async with db.engine.begin() as conn:
                    await conn.execute(
                        text("INSERT INTO kept (id, note) VALUES (:id, 'later')"), {"id": i}
                    )

        dump = tmp_path / "b" / "db.dump"
        # Taken while another connection commits: whole transactions or none.
        await asyncio.gather(writer(), asyncio.to_thread(backup.dump, database_url, dump))
        async with db.engine.begin() as conn:
            await conn.execute(text("DELETE FROM kept WHERE id < 250"))
            await conn.execute(text("UPDATE kept SET note = 'changed'"))
        await db.dispose()

        await asyncio.to_thread(backup.restore, database_url, dump)
        db = Database(database_url)
        async with db.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT id, note FROM kept ORDER BY id"))).all()
        ids = [row[0] for row in rows]
        assert ids[:500] == list(range(500))  # the deletion is undone
        assert ids == list(range(len(ids))) and 500 <= len(ids) <= 600
        assert rows[7][1] == "行7" and all(row[1] != "changed" for row in rows)
    finally:
        await db.dispose()


async def test_streams_are_dumped_and_restored_into_an_empty_server(tmp_path: Path) -> None:
    first = NatsServer(tmp_path / "first").start()
    try:
        nc = await nats.connect(first.url)
        js = nc.jetstream()
        await js.add_stream(name="RECEPTION", subjects=["reception.>"])
        await js.add_stream(name=DEAD_LETTER_STREAM, subjects=["deadletter.>"])
        for i in range(120):
            await js.publish(
                f"reception.intake.opened.v{1 + i % 2}",
                f'{{"n": {i}}}'.encode(),
                headers={"Nats-Msg-Id": f"event-{i}"},
            )
        await js.publish(
            "deadletter.records__archive_intake",
            b"{}",
            headers={"Workshop-Error": "the handler's bug"},
        )
        await js.delete_msg("RECEPTION", 5)
        await nc.close()
        counts = await backup.dump_streams([first.url], tmp_path / "streams")
        assert counts == {"RECEPTION": 119, DEAD_LETTER_STREAM: 1}
    finally:
        first.stop()

    second = NatsServer(tmp_path / "second").start()  # an empty store
    try:
        counts = await backup.restore_streams([second.url], tmp_path / "streams")
        assert counts == {"RECEPTION": 119, DEAD_LETTER_STREAM: 1}
        # Again: the duplicate window drops every copy.
        await backup.restore_streams([second.url], tmp_path / "streams")
        nc = await nats.connect(second.url)
        js = nc.jetstream()
        info = await js.stream_info("RECEPTION")
        assert info.state.messages == 119 and info.config.subjects == ["reception.>"]
        first_message = await js.get_msg("RECEPTION", 1)
        assert first_message.subject == "reception.intake.opened.v1"
        assert first_message.data == b'{"n": 0}'
        assert first_message.headers == {"Nats-Msg-Id": "event-0"}
        fifth = await js.get_msg("RECEPTION", 5)
        assert fifth.data == b'{"n": 5}'  # the deleted fifth (n 4) is not there
        dead = await js.get_msg(DEAD_LETTER_STREAM, 1)
        assert dead.headers is not None and dead.headers["Workshop-Error"] == "the handler's bug"
        await nc.close()
    finally:
        second.stop()
