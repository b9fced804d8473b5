"""Promise-time control: projections on constructed timelines, one warning per promise,
the advisor's list and the new promise."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
import pytest_asyncio

from services.workorders import promise, service
from services.workorders.config import Settings
from services.workorders.main import create_app
from services.workorders.promise import PlannedJob, project, remaining_time
from shared.auth import Role, User
from shared.events import utcnow
from tests.harness import NatsServer, auth, eventually, token
from tests.test_bad_input import assert_problem
from tests.test_workorders_api import Workorders, approved, labour

pytestmark = [pytest.mark.store]

NOW = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
H = timedelta(hours=1)
ORDER_A, ORDER_B = uuid.uuid4(), uuid.uuid4()
ADVISOR = User(id="a", name="A", roles=frozenset({Role.advisor}), branch="BR01")


def job(order: uuid.UUID, tech: str | None, hours: float, queued: int, eta=None) -> PlannedJob:
    return PlannedJob(
        job_id=uuid.uuid4(),
        order_id=order,
        technician_id=tech,
        remaining=timedelta(hours=hours),
        queued_at=NOW + timedelta(minutes=queued),
        parts_eta_at=eta,
    )


def test_a_technicians_queue_runs_one_job_after_another():
    finishes = project(
        [job(ORDER_A, "li", 2, 0), job(ORDER_B, "li", 1, 1), job(ORDER_A, "wang", 1, 2)],
        NOW,
        timedelta(minutes=30),
    )
    assert finishes[ORDER_A] == NOW + 2 * H + timedelta(minutes=30)
    assert finishes[ORDER_B] == NOW + 3 * H + timedelta(minutes=30)


def test_parts_eta_and_unassigned_jobs():
    eta = NOW + 4 * H
    finishes = project([job(ORDER_A, "li", 1, 0, eta), job(ORDER_B, None, 1, 0)], NOW, timedelta())
    assert finishes[ORDER_A] == eta + H
    assert finishes[ORDER_B] == NOW + H


def test_remaining_time_never_below_a_quarter_hour():
    assert remaining_time(Decimal("2"), 1800) == timedelta(hours=1.5)
    assert remaining_time(Decimal("1"), 7200) == timedelta(minutes=15)


@pytest_asyncio.fixture
async def wo(database_url: str, nats_server: NatsServer) -> AsyncIterator[Workorders]:
    # Projections driven by hand on constructed timelines: no pass of the service's own.
    settings = Settings(
        database_url=database_url,
        nats_url=nats_server.url,
        promise_check_interval=3600,
        promise_recheck_delay=3600,
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client,
    ):
        yield Workorders(client, app.state.runtime.db, nats_server.url)


async def _check(wo: Workorders, now: datetime) -> int:
    async with wo.db.transaction() as session:
        return await promise.check_promises(session, Settings(), now)


@pytest.mark.asyncio
async def test_an_order_at_risk_is_announced_once_per_promise(wo: Workorders):
    # 3 h of work, promised at 17:00 local: fine at 09:00, at risk from about 13:30.
    event = approved(
        lines=[labour("ENG-1", "3", "900")],
        promised_at=NOW + 8 * H,
        approved_at=NOW - H,
    )
    order = await wo.consent(event)
    assert await _check(wo, NOW) == 0
    detail = await wo.order(order["id"])
    assert detail["at_risk_since"] is None
    assert detail["projected_finish_at"].startswith("2026-11-30T04:30")
    etag = detail["etag"]
    assert await _check(wo, NOW + 4.5 * H) == 1
    assert await _check(wo, NOW + 5 * H) == 0  # said once
    [warning] = await wo.events("workorders.repair_order.at_risk.v1")
    assert warning["repair_order_id"] == order["id"]
    assert warning["remaining_hours"] == "3.0"
    # The timer never changes the order's ETag.
    assert (await wo.order(order["id"]))["etag"] == etag
    r = await wo.client.get("/repair-orders/at-risk", headers=auth("advisor"))
    assert [o["id"] for o in r.json()["items"]] == [order["id"]]
    # With the projection the advisor tells the customer, as the order's own page has it.
    [listed] = r.json()["items"]
    detail = await wo.order(order["id"])
    assert listed["projected_finish_at"] == detail["projected_finish_at"] is not None
    assert listed["at_risk_since"] == detail["at_risk_since"] is not None
    assert (await wo.client.get("/repair-orders/at-risk", headers=auth("advisor", "BR02"))).json()[
        "items"
    ] == []

    path = f"/repair-orders/{order['id']}/promise"
    new = {"promised_at": (NOW + 12 * H).isoformat(), "told_at": (NOW + 5 * H).isoformat()}
    assert_problem(await wo.client.post(path, headers=auth("advisor"), json=new), 428)
    assert_problem(
        await wo.client.post(path, headers={**auth("cashier"), "If-Match": etag}, json=new), 403
    )
    r = await wo.client.post(path, headers={**auth("advisor"), "If-Match": etag}, json=new)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["at_risk_since"] is None
    assert body["promised_at"].startswith("2026-11-30T13:00")
    assert [p["source"] for p in body["promises"]] == ["estimate", "advisor"]
    # Followup tells the customer the new time.
    [changed] = await wo.events("workorders.repair_order.promise_changed.v1")
    assert changed["repair_order_id"] == order["id"]
    assert changed["promised_at"].startswith("2026-11-30T13:00")
    was = datetime.fromisoformat(changed["previous_promised_at"])
    assert was == datetime.fromisoformat(order["promised_at"])
    at_risk = await wo.client.get("/repair-orders/at-risk", headers=auth("advisor"))
    assert at_risk.json()["items"] == []
    # The new promise can be at risk again, and is announced again.
    assert await _check(wo, NOW + 5 * H) == 0
    assert await _check(wo, NOW + 9 * H) == 1


@pytest.mark.asyncio
async def test_the_promise_body_is_checked(wo: Workorders):
    order = await wo.consent(approved())
    r = await wo.client.post(
        f"/repair-orders/{order['id']}/promise",
        headers={**auth("advisor"), "If-Match": order["etag"]},
        json={"promised_at": "tomorrow"},
    )
    assert_problem(r, 422, "promised_at")
    async with wo.db.reader() as session:
        stored = await service.get_repair_order(session, uuid.UUID(order["id"]), ADVISOR)
        assert len(stored.promises) == 1


@pytest.mark.asyncio
async def test_the_board_flag_follows_dispatch_clocking_and_parts_without_the_timer(
    database_url: str, nats_server: NatsServer
):
    """The timer is an hour away: every flip below comes from the change itself."""
    # On the real clock: the branch works around the clock these days, so the projection
    # is the same at any hour (the calendar's own cases are in test_calendar_services).
    today = utcnow().date()
    settings = Settings(
        database_url=database_url,
        nats_url=nats_server.url,
        promise_check_interval=3600,
        promise_recheck_delay=0.05,
        business_hours={"BR01": (0, 24)},
        calendar_workdays={"CN": [today + timedelta(days=i) for i in range(-1, 3)]},
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client,
    ):
        wo = Workorders(client, app.state.runtime.db, nats_server.url)
        now = utcnow()
        # Engine work, 3 h, promised late; a brake job, 1 h, promised in 3 h.
        engine = await wo.consent(
            approved(lines=[labour("ENG-1", "3", "900")], promised_at=now + 10 * H)
        )
        brakes = await wo.consent(
            approved(lines=[labour("BRK-1", "1", "300")], promised_at=now + 3 * H)
        )
        engine_job, brake_job = engine["jobs"][0]["id"], brakes["jobs"][0]["id"]

        async def dispatch(job_id: str, technician: str, start: datetime) -> None:
            job = await wo.job(job_id)
            r = await client.put(
                f"/jobs/{job_id}/assignment",
                headers={**auth("foreman"), "If-Match": job["etag"]},
                json={
                    "technician_id": technician,
                    "bay": "B1",
                    "planned_start_at": start.isoformat(),
                },
            )
            assert r.status_code == 200, r.text

        async def brake_card_is(at_risk: bool) -> None:
            async def probe() -> dict | None:
                r = await client.get("/board/cards", headers=auth("screen"))
                [card] = [c for c in r.json()["cards"] if c["id"] == brakes["id"]]
                projected = card["projected_finish_at"] is not None
                return card if projected and card["at_risk"] is at_risk else None

            await eventually(probe, timeout=10, what=f"the brake job's card at risk={at_risk}")

        await dispatch(engine_job, "tech-wang", now - H)
        await dispatch(brake_job, "tech-li", now)
        await brake_card_is(False)  # Li is free: done in 1.5 h with QC
        # Reassigned behind Wang's 3 h engine job: 4.5 h, past the promise.
        await dispatch(brake_job, "tech-wang", now)
        await brake_card_is(True)
        # Wang finishes the engine job early: the brakes are on time again.
        wang = {"Authorization": f"Bearer {token('technician', sub='tech-wang')}"}
        assert (await client.post(f"/jobs/{engine_job}/clock-on", headers=wang)).status_code == 201
        r = await client.post(
            f"/jobs/{engine_job}/clock-off", headers=wang, json={"reason": "finished"}
        )
        assert r.status_code == 200, r.text
        await brake_card_is(False)
        # A part the brakes need, due in 5 h.
        r = await client.post(
            f"/jobs/{brake_job}/parts",
            headers=auth("foreman"),
            json={"part_number": "BP-1", "quantity": "1"},
        )
        assert r.status_code == 201, r.text
        r = await client.post(
            f"/parts/{r.json()['id']}/transitions",
            headers=auth("foreman"),
            json={"to": "ordered", "eta_at": (now + 5 * H).isoformat()},
        )
        assert r.status_code == 200, r.text
        await brake_card_is(True)
        # The advisor got one warning per promise broken; the timer never ran.
        warnings = await wo.events("workorders.repair_order.at_risk.v1")
        assert [w["repair_order_id"] for w in warnings] == [brakes["id"]]
