"""The status board on a real database: cards, the ordered change log, the event stream's
resume from Last-Event-ID (also across a trim and from another replica's writes), the
lounge variant and who may look."""

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text, update

from services.workorders import board, service
from services.workorders.board import (
    BOARD_LOCK_CLASS,
    event_stream,
    hub_for,
    mark_changed,
    mask_plate,
)
from services.workorders.config import Settings
from services.workorders.main import create_app
from services.workorders.models import BoardChange, BoardPending, RepairOrder
from shared.events import utcnow
from shared.service import Runtime
from tests.harness import NatsServer, auth, eventually, token
from tests.test_bad_input import assert_problem
from tests.test_workorders_api import PROMISED, TECH_LI, Workorders, approved, labour

pytestmark = [pytest.mark.store]

SCREEN_TOKEN = token("screen")


@contextlib.asynccontextmanager
async def workorders(database_url: str, nats_server: NatsServer) -> AsyncIterator[Workorders]:
    import httpx

    settings = Settings(
        database_url=database_url,
        nats_url=nats_server.url,
        board_poll_interval=0.05,
        board_heartbeat_seconds=0.3,
        # Projections here are driven by hand on constructed timelines.
        promise_recheck_delay=3600,
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client,
    ):
        yield Workorders(client, app.state.runtime.db, nats_server.url)


@pytest_asyncio.fixture
async def wo(database_url: str, nats_server: NatsServer) -> AsyncIterator[Workorders]:
    async with workorders(database_url, nats_server) as service:
        yield service


@pytest_asyncio.fixture
async def wo_pg(pg_url: str, nats_server: NatsServer) -> AsyncIterator[Workorders]:
    """For what only PostgreSQL does: SQLite has one writer, so there is nothing to order."""
    async with workorders(pg_url, nats_server) as service:
        yield service


async def sql(wo: Workorders, statement: str) -> list[Any]:
    async with wo.db.engine.connect() as conn:
        return list((await conn.execute(text(statement))).all())


def runtime_of(wo: Workorders) -> Runtime:
    transport = wo.client._transport
    return transport.app.state.runtime  # type: ignore[attr-defined]


class Stream:
    """One screen's stream, read event by event with a deadline."""

    def __init__(
        self, runtime: Runtime, after: int | None, lounge: bool = False, branch: str = "BR01"
    ):
        self.gen = event_stream(runtime, branch, after, lounge)
        self.buffer = ""
        self.last_id: int | None = after

    async def next(self, timeout: float = 5) -> tuple[str, Any, int | None]:
        while "\n\n" not in self.buffer:
            chunk = await asyncio.wait_for(anext(self.gen), timeout)
            self.buffer += chunk.decode()
        block, self.buffer = self.buffer.split("\n\n", 1)
        fields: dict[str, str] = {}
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            fields[name] = value
        if "retry" in fields:
            return await self.next(timeout)
        event_id = int(fields["id"]) if "id" in fields else None
        if event_id is not None:
            self.last_id = event_id
        return fields.get("event", ""), json.loads(fields.get("data", "null")), event_id

    async def until(self, predicate: Any, timeout: float = 5) -> tuple[str, Any, int | None]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = await self.next(max(0.01, deadline - loop.time()))
            if predicate(event):
                return event

    async def close(self) -> None:
        await self.gen.aclose()


async def clock_on_first_job(wo: Workorders, order: dict[str, Any]) -> None:
    job_id = order["jobs"][0]["id"]
    await wo.assign(job_id)
    r = await wo.client.post(f"/jobs/{job_id}/clock-on", headers=TECH_LI)
    assert r.status_code == 201, r.text


@pytest.mark.asyncio
async def test_cards_show_open_cars_with_their_people_stage_and_promise(wo: Workorders):
    order = await wo.consent(approved(lines=[labour("BRK-010", "1.5", "450")]))
    await clock_on_first_job(wo, order)
    await in_log(wo)
    r = await wo.client.get("/board/cards", headers=auth("screen"))
    assert r.status_code == 200, r.text
    [card] = [c for c in r.json()["cards"] if c["id"] == order["id"]]
    assert card["plate"] == "沪A12345"
    assert card["advisor"] == "advisor-zhao"
    assert card["technicians"] == ["tech-li"]
    assert card["status"] == "in_progress"
    assert card["promised_at"].startswith("2026-11-30T09:00")
    assert card["at_risk"] is False
    assert r.json()["last_id"] > 0

    # A cancelled order leaves the board.
    other = await wo.consent(approved())
    assert (await wo.move(other["id"], "cancelled")).status_code == 200
    ids = {c["id"] for c in (await wo.client.get("/board/cards", headers=SCREEN)).json()["cards"]}
    assert order["id"] in ids and other["id"] not in ids


SCREEN = auth("screen")


@pytest.mark.asyncio
async def test_every_change_is_logged_in_commit_order(wo: Workorders):
    order = await wo.consent(approved())
    await clock_on_first_job(wo, order)
    await in_log(wo)
    rows = await sql(wo, "SELECT id, repair_order_id FROM board_change")
    ids = [r[0] for r in rows]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # consent, assignment and clock-on each wrote a change for this order
    assert sum(1 for r in rows if uuid.UUID(str(r[1])) == uuid.UUID(order["id"])) >= 3


@pytest.mark.asyncio
async def test_a_change_reaches_a_connected_screen_and_a_reconnect_misses_nothing(
    wo: Workorders,
):
    runtime = runtime_of(wo)
    first = await wo.consent(approved())
    stream = Stream(runtime, after=None)
    name, data, snapshot_id = await stream.next()
    assert name == "snapshot" and snapshot_id is not None
    assert [c["id"] for c in data["cards"]] == [first["id"]]

    await clock_on_first_job(wo, first)
    name, data, change_id = await stream.until(
        lambda e: e[0] == "card" and e[1]["card"]["status"] == "in_progress"
    )
    assert data["id"] == first["id"] and change_id is not None and change_id > snapshot_id
    await stream.close()

    # While the screen is away: a new order and a status change of the first.
    second = await wo.consent(approved())
    r = await wo.client.post(
        f"/jobs/{first['jobs'][0]['id']}/clock-off",
        headers=TECH_LI,
        json={"reason": "waiting_parts"},
    )
    assert r.status_code == 200, r.text

    resumed = Stream(runtime, after=change_id)
    seen: dict[str, dict[str, Any]] = {}
    ids: list[int] = []
    while set(seen) != {first["id"], second["id"]}:
        name, data, event_id = await resumed.next()
        if name == "card":
            seen[data["id"]] = data["card"]
            assert event_id is not None
            ids.append(event_id)
    assert ids == sorted(ids) and ids[0] > change_id
    assert seen[first["id"]]["status"] == "waiting_parts"
    assert seen[second["id"]]["status"] == "open"
    # Heartbeats keep an idle stream alive.
    name, _, _ = await resumed.next()
    assert name == "ping"
    await resumed.close()


async def in_log(wo: Workorders) -> None:
    """Every committed change in the log now: on PostgreSQL the feed moves writers'
    pending changes there shortly after their commits; here that move runs at once."""
    if not wo.db.is_sqlite:
        await hub_for(runtime_of(wo)).move_pending()


async def change(wo: Workorders, branch: str, order: dict[str, Any]) -> None:
    async with wo.db.transaction() as session:
        mark_changed(session, branch, uuid.UUID(order["id"]))


@pytest.mark.asyncio
async def test_board_writers_do_not_wait_for_each_other(wo_pg: Workorders):
    """PostgreSQL: while one writer's change is written and not yet committed, others of
    its branch and of another branch commit, and their cards reach the screens. The
    held-up change, committed last, still reaches its screens afterwards."""
    wo = wo_pg
    runtime = runtime_of(wo)
    here, waiting = await wo.consent(approved()), await wo.consent(approved())
    async with wo.db.transaction() as session:
        opened = await service.apply_consent(session, approved(branch="BR02"))
        assert opened is not None
        there = {"id": str(opened.id)}
    screen_here = Stream(runtime, after=None)
    screen_there = Stream(runtime, after=None, branch="BR02")
    assert (await screen_here.next())[0] == "snapshot"
    assert (await screen_there.next())[0] == "snapshot"

    async with wo.db.transaction() as holder:  # a BR01 writer, its change written
        mark_changed(holder, "BR01", uuid.UUID(waiting["id"]))
        await holder.run_sync(board._write_board_changes)  # what runs just before commit
        await asyncio.wait_for(change(wo, "BR01", here), 5)
        await asyncio.wait_for(change(wo, "BR02", there), 5)
        _, data, here_id = await screen_here.until(lambda e: e[0] == "card")
        assert data["id"] == here["id"]
        _, data, _ = await screen_there.until(lambda e: e[0] == "card")
        assert data["id"] == there["id"]
    _, _, waiting_id = await screen_here.until(
        lambda e: e[0] == "card" and e[1]["id"] == waiting["id"]
    )
    assert waiting_id is not None and here_id is not None and waiting_id > here_id
    await screen_here.close()
    await screen_there.close()


@pytest.mark.asyncio
async def test_a_change_moved_into_the_log_out_of_order_is_not_skipped(
    wo_pg: Workorders,
):
    """PostgreSQL: another replica's feed is moving a change into the log and has drawn
    its id, not yet committed. This feed's move of a later change waits for it, so the
    smaller id is never passed by a screen's cursor."""
    wo = wo_pg
    runtime = runtime_of(wo)
    here, moving = await wo.consent(approved()), await wo.consent(approved())
    screen = Stream(runtime, after=None)
    assert (await screen.next())[0] == "snapshot"
    async with wo.db.engine.connect() as mover:
        await mover.execute(
            text("SELECT pg_advisory_xact_lock(:cls, 0)"), {"cls": BOARD_LOCK_CLASS}
        )
        [(moving_id,)] = (
            await mover.execute(
                text(
                    "INSERT INTO board_change (branch, repair_order_id, changed_at) "
                    "VALUES ('BR01', :order, now()) RETURNING id"
                ),
                {"order": uuid.UUID(moving["id"])},
            )
        ).all()
        await asyncio.wait_for(change(wo, "BR01", here), 5)  # the writer does not wait
        first = asyncio.create_task(screen.until(lambda e: e[0] == "card", timeout=10))

        async def feed_waits_or_delivered() -> bool:
            if first.done():
                return True
            [(waiting,)] = await sql(
                wo,
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            return bool(waiting)

        await eventually(feed_waits_or_delivered, timeout=5, what="this feed's move")
        await mover.commit()
    _, _, first_id = await first
    assert first_id == moving_id
    _, data, here_id = await screen.until(lambda e: e[0] == "card")
    assert data["id"] == here["id"] and here_id is not None and here_id > moving_id
    await screen.close()


@pytest.mark.asyncio
async def test_many_writers_at_once_reach_every_screen_in_id_order(wo: Workorders):
    """Sixty transactions of two branches commit at once while a second feed moves
    changes too (as another replica's would): each branch's screen gets every change of
    its branch exactly once, in rising ids."""
    runtime = runtime_of(wo)
    screens = {branch: Stream(runtime, after=None, branch=branch) for branch in ("BR01", "BR02")}
    for screen in screens.values():
        assert (await screen.next())[0] == "snapshot"
    written = {branch: {str(uuid.uuid4()) for _ in range(30)} for branch in screens}
    writers = asyncio.gather(
        *(change(wo, branch, {"id": order}) for branch in written for order in written[branch])
    )

    async def other_feed() -> None:
        while not writers.done():
            await in_log(wo)
            await asyncio.sleep(0)

    await asyncio.gather(writers, other_feed())
    for branch, screen in screens.items():
        seen: list[tuple[int, str]] = []
        while len(seen) < len(written[branch]):
            name, data, event_id = await screen.next()
            if name == "card":
                assert event_id is not None
                seen.append((event_id, data["id"]))
        assert sorted(order for _, order in seen) == sorted(written[branch])
        ids = [event_id for event_id, _ in seen]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        await screen.close()


@pytest.mark.asyncio
async def test_changes_written_by_another_replica_arrive_by_polling(wo: Workorders):
    """Another replica's commit does not wake this process: the feed finds it by polling."""
    runtime = runtime_of(wo)
    order = await wo.consent(approved())
    stream = Stream(runtime, after=None)
    await stream.until(lambda e: e[0] == "snapshot")
    async with wo.db.engine.begin() as conn:  # plain SQL: no session hooks, no wake-up
        await conn.execute(
            update(RepairOrder.__table__)  # type: ignore[attr-defined]
            .where(RepairOrder.__table__.c.id == uuid.UUID(order["id"]))  # type: ignore[attr-defined]
            .values(status="cancelled")
        )
        # What that replica's writer appends (on PostgreSQL: for this feed to move).
        log: Any = BoardChange if wo.db.is_sqlite else BoardPending
        await conn.execute(
            log.__table__.insert().values(
                branch="BR01", repair_order_id=uuid.UUID(order["id"]), changed_at=utcnow()
            )
        )
    _, data, _ = await stream.until(lambda e: e[0] == "card")
    assert data == {"id": order["id"], "card": None}
    await stream.close()


@pytest.mark.asyncio
async def test_a_screen_behind_the_trimmed_log_starts_over_with_a_snapshot(wo: Workorders):
    runtime = runtime_of(wo)
    order = await wo.consent(approved())
    await clock_on_first_job(wo, order)
    await in_log(wo)
    async with wo.db.transaction() as session:
        await session.exec(update(BoardChange).values(changed_at=utcnow() - timedelta(days=3)))
    await hub_for(runtime).trim()
    [(left,)] = await sql(wo, "SELECT count(*) FROM board_change")
    assert left == 1  # the newest stays, so ids keep rising
    stream = Stream(runtime, after=1)
    name, data, _ = await stream.next()
    assert name == "snapshot"
    assert [c["status"] for c in data["cards"]] == ["in_progress"]
    await stream.close()


@pytest.mark.asyncio
async def test_the_lounge_shows_masked_plates_and_no_names(wo: Workorders):
    runtime = runtime_of(wo)
    order = await wo.consent(approved())
    stream = Stream(runtime, after=None, lounge=True)
    _, data, _ = await stream.next()
    assert data["cards"] == [
        {
            "id": order["id"],
            "plate": "沪A***45",
            "status": "open",
            "promised_at": data["cards"][0]["promised_at"],
        }
    ]
    await clock_on_first_job(wo, order)
    _, data, _ = await stream.until(lambda e: e[0] == "card")
    assert set(data["card"]) == {"id", "plate", "status", "promised_at"}
    await stream.close()
    page = await wo.client.get("/board/lounge", params={"access_token": SCREEN_TOKEN, "lang": "en"})
    assert page.status_code == 200, page.text
    assert "沪A***45" in page.text and "Your car" in page.text
    assert (
        "advisor-zhao" not in page.text and "tech-li" not in page.text and "王芳" not in page.text
    )


def test_plate_masking():
    assert mask_plate("沪A12345") == "沪A***45"
    assert mask_plate("粤B1234D5") == "粤B****D5"
    assert mask_plate("AB1") == "A**"
    assert mask_plate(None) == ""


@pytest.mark.asyncio
async def test_who_may_look_at_the_board(wo: Workorders):
    await wo.consent(approved())
    c = wo.client
    r = await c.get("/board", params={"access_token": SCREEN_TOKEN})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "车间看板" in r.text and "沪A12345" in r.text
    r = await c.get("/board", params={"access_token": SCREEN_TOKEN, "lang": "en"})
    assert "Workshop board" in r.text
    assert (await c.get("/board", headers=auth("foreman"))).status_code == 200
    # A writing role's token is not accepted in a URL; nor is no token, nor a bad language.
    assert_problem(await c.get("/board", params={"access_token": token("foreman")}), 403)
    assert_problem(
        await c.get("/board/events", params={"access_token": token(["screen", "cashier"])}), 403
    )
    assert_problem(await c.get("/board"), 401)
    assert_problem(await c.get("/board/events", params={"access_token": "not-a-token"}), 401)
    assert_problem(await c.get("/board/cards", headers=auth("followup_agent")), 403)
    assert_problem(await c.get("/board", params={"access_token": SCREEN_TOKEN, "lang": "fr"}), 422)
    assert_problem(
        await c.get("/board/events", params={"access_token": SCREEN_TOKEN, "after": "-1"}),
        422,
        "after",
    )
    # Other endpoints take no token from the URL.
    assert_problem(await c.get("/repair-orders", params={"access_token": SCREEN_TOKEN}), 401)
    # A screen of another branch sees none of these cards.
    r = await c.get("/board/cards", headers=auth("screen", branch="BR02"))
    assert r.json()["cards"] == []


@pytest.mark.asyncio
async def test_the_timer_rewriting_projections_adds_no_board_changes(wo: Workorders):
    from services.workorders import promise

    order = await wo.consent(approved())
    settings = Settings(at_risk_margin_minutes=0, finish_buffer_minutes=0)

    async def count() -> int:
        await in_log(wo)
        [(n,)] = await sql(wo, "SELECT count(*) FROM board_change")
        return int(n)

    before = await count()
    async with wo.db.transaction() as session:
        await promise.check_promises(session, settings, PROMISED - timedelta(hours=10))
    assert await count() == before  # a projection alone is not on a card
    async with wo.db.transaction() as session:
        await promise.check_promises(session, settings, PROMISED - timedelta(hours=1))
    assert await count() == before + 1  # the at-risk flag is
    r = await wo.client.get("/board/cards", headers=SCREEN)
    [card] = [c for c in r.json()["cards"] if c["id"] == order["id"]]
    assert card["at_risk"] is True
