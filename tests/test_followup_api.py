"""Followup's API in process on a real database and nats-server: the work list, calls,
surveys, complaint cases with ETags, KPIs, and bad input, roles and branches refused."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlmodel import func, select

from services.followup import service, timers
from services.followup.config import Settings
from services.followup.main import create_app
from services.followup.models import CallAttempt, Complaint, OutboxEvent, Survey
from shared.db import Database
from tests.harness import NatsServer, auth
from tests.test_bad_input import assert_problem
from tests.test_followup_timers import MONDAY, Clock, delivered

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

AGENT = auth("followup_agent")
MANAGER = auth("manager")
DUE = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)  # Thursday 10:00 in Shanghai


class Followup:
    def __init__(self, client: httpx.AsyncClient, clock: Clock, db: Database, settings: Settings):
        self.client, self.clock, self.db, self.settings = client, clock, db, settings

    async def deliver(self, **kwargs: Any) -> dict[str, Any]:
        event = delivered(**kwargs)
        async with self.db.transaction() as session:
            visit = await service.record_delivery(session, event, self.settings)
        assert visit is not None
        return {"visit_id": str(visit.id), "event": event}

    async def count(self, model: Any) -> int:
        async with self.db.reader() as session:
            return int((await session.exec(select(func.count()).select_from(model))).one())


@pytest_asyncio.fixture
async def followup(database_url: str, nats_server: NatsServer) -> AsyncIterator[Followup]:
    clock = Clock(MONDAY)
    settings = Settings(
        database_url=database_url,
        nats_url=nats_server.url,
        clock=clock,
        timer_interval=3600,
        branch_managers={"BR01": "manager-zhang"},
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client,
    ):
        yield Followup(client, clock, app.state.runtime.db, settings)


# --- the work list ---------------------------------------------------------------------


async def test_work_list_shows_visits_due_today_and_overdue(followup: Followup) -> None:
    first = await followup.deliver()
    second = await followup.deliver(at=MONDAY + timedelta(days=1))  # due Friday
    c = followup.client
    r = await c.get("/visits", headers=AGENT)
    assert r.status_code == 200, r.text
    assert r.json()["items"] == []  # Monday: nothing due yet

    followup.clock.now = DUE - timedelta(hours=1)  # Thursday 09:00 local
    r = await c.get("/visits", headers=AGENT)
    assert [v["id"] for v in r.json()["items"]] == [first["visit_id"]]
    r = await c.get("/visits", params={"view": "overdue"}, headers=AGENT)
    assert r.json()["items"] == []

    followup.clock.now = DUE + timedelta(days=1, hours=2)  # Friday noon
    r = await c.get("/visits", params={"view": "overdue"}, headers=AGENT)
    assert [v["id"] for v in r.json()["items"]] == [first["visit_id"], second["visit_id"]]
    r = await c.get("/visits", params={"view": "today", "limit": 1}, headers=AGENT)
    page = r.json()
    assert [v["id"] for v in page["items"]] == [first["visit_id"]]
    r = await c.get(
        "/visits", params={"view": "today", "cursor": page["next_cursor"]}, headers=AGENT
    )
    assert [v["id"] for v in r.json()["items"]] == [second["visit_id"]]
    assert r.json()["next_cursor"] is None

    r = await c.get("/visits", params={"view": "all"}, headers=auth("followup_agent", "BR02"))
    assert r.json()["items"] == []  # another branch sees none
    r = await c.get(f"/visits/{first['visit_id']}", headers=auth("followup_agent", "BR02"))
    assert_problem(r, 404)


async def test_visits_of_one_repair_order_or_one_customer(followup: Followup) -> None:
    """Named by the repair order or the customer, whatever is due when (every status
    unless a view is asked for); another branch still sees none."""
    customer = uuid.uuid4()
    first = await followup.deliver(customer_id=customer)
    later = await followup.deliver(customer_id=customer, at=MONDAY + timedelta(days=1))
    other = await followup.deliver()
    c = followup.client

    order = str(later["event"].repair_order_id)
    r = await c.get("/visits", params={"repair_order_id": order}, headers=AGENT)
    assert r.status_code == 200, r.text
    assert [v["id"] for v in r.json()["items"]] == [later["visit_id"]]
    assert r.json()["items"][0]["repair_order_id"] == order

    r = await c.get("/visits", params={"customer_id": str(customer)}, headers=AGENT)
    assert [v["id"] for v in r.json()["items"]] == [first["visit_id"], later["visit_id"]]
    page = await c.get("/visits", params={"customer_id": str(customer), "limit": 1}, headers=AGENT)
    assert [v["id"] for v in page.json()["items"]] == [first["visit_id"]]
    rest = await c.get(
        "/visits",
        params={"customer_id": str(customer), "limit": 1, "cursor": page.json()["next_cursor"]},
        headers=AGENT,
    )
    assert [v["id"] for v in rest.json()["items"]] == [later["visit_id"]]
    assert rest.json()["next_cursor"] is None

    # Both at once, and with a view: Monday, nothing is due today yet.
    r = await c.get(
        "/visits",
        params={"customer_id": str(customer), "repair_order_id": order},
        headers=AGENT,
    )
    assert [v["id"] for v in r.json()["items"]] == [later["visit_id"]]
    r = await c.get(
        "/visits", params={"customer_id": str(customer), "view": "today"}, headers=AGENT
    )
    assert r.json()["items"] == []
    r = await c.get(
        "/visits", params={"customer_id": str(other["event"].customer_id)}, headers=AGENT
    )
    assert [v["id"] for v in r.json()["items"]] == [other["visit_id"]]
    r = await c.get("/visits", params={"customer_id": str(uuid.uuid4())}, headers=AGENT)
    assert r.json()["items"] == []
    r = await c.get(
        "/visits", params={"customer_id": str(customer)}, headers=auth("followup_agent", "BR02")
    )
    assert r.json()["items"] == []
    for name in ("repair_order_id", "customer_id"):
        assert_problem(await c.get("/visits", params={name: "RO-1"}, headers=AGENT), 422, name)


async def test_work_list_refuses_bad_queries(followup: Followup) -> None:
    c = followup.client
    assert_problem(await c.get("/visits", params={"view": "someday"}, headers=AGENT), 422, "view")
    assert_problem(await c.get("/visits", params={"cursor": "nope"}, headers=AGENT), 422, "cursor")
    assert_problem(await c.get("/visits", params={"limit": 500}, headers=AGENT), 422, "limit")
    assert_problem(await c.get("/visits", headers=auth("technician")), 403)
    assert_problem(await c.get("/visits"), 401)


# --- call attempts ---------------------------------------------------------------------


async def test_call_attempts_reschedule_or_close_the_visit(followup: Followup) -> None:
    visit = (await followup.deliver())["visit_id"]
    c = followup.client
    followup.clock.now = DUE + timedelta(hours=7, minutes=30)  # Thursday 17:30 local
    r = await c.post(f"/visits/{visit}/calls", json={"result": "no_answer"}, headers=AGENT)
    assert r.status_code == 201, r.text
    r = await c.get(f"/visits/{visit}", headers=AGENT)
    # Four hours later is after closing: the retry goes to Friday's opening.
    assert r.json()["due_at"] == "2026-12-04T01:00:00Z"
    assert r.json()["attempts"] == 1

    call_back = "2026-12-08T15:00:00+08:00"
    r = await c.post(
        f"/visits/{visit}/calls",
        json={"result": "call_back", "call_back_at": call_back, "note": "in a meeting"},
        headers=AGENT,
    )
    assert r.status_code == 201, r.text
    r = await c.get(f"/visits/{visit}", headers=AGENT)
    assert r.json()["due_at"] == "2026-12-08T07:00:00Z"

    r = await c.post(f"/visits/{visit}/calls", json={"result": "wrong_number"}, headers=AGENT)
    assert r.status_code == 201
    r = await c.get(f"/visits/{visit}", headers=AGENT)
    assert (r.json()["status"], r.json()["outcome"]) == ("closed", "wrong_number")
    r = await c.post(f"/visits/{visit}/calls", json={"result": "reached"}, headers=AGENT)
    assert_problem(r, 409)
    r = await c.get(f"/visits/{visit}/calls", headers=AGENT)
    assert [a["result"] for a in r.json()["items"]] == ["no_answer", "call_back", "wrong_number"]
    assert r.json()["next_cursor"] is None


async def test_call_attempts_refuse_bad_input_and_write_nothing(followup: Followup) -> None:
    visit = (await followup.deliver())["visit_id"]
    c = followup.client
    url = f"/visits/{visit}/calls"
    cases: list[tuple[Any, int, str | None]] = [
        ({"result": "busy"}, 422, "result"),
        ({"result": "call_back"}, 422, None),
        ({"result": "call_back", "call_back_at": "2026-11-29T10:00:00+08:00"}, 422, "call_back_at"),
        ({"result": "call_back", "call_back_at": "2027-01-30T10:00:00+08:00"}, 422, "call_back_at"),
        ({"result": "no_answer", "extra": 1}, 422, "extra"),
        ({"result": "no_answer", "note": "x" * 2001}, 422, "note"),
    ]
    for body, status, field in cases:
        assert_problem(await c.post(url, json=body, headers=AGENT), status, field)
    r = await c.post(url, content=b"{", headers={**AGENT, "Content-Type": "application/json"})
    assert_problem(r, 400)
    assert_problem(await c.post(url, json={"result": "reached"}, headers=auth("advisor")), 403)
    r = await c.post(url, json={"result": "reached"}, headers=auth("followup_agent", "BR02"))
    assert_problem(r, 404)
    r = await c.post(f"/visits/{uuid.uuid4()}/calls", json={"result": "reached"}, headers=AGENT)
    assert_problem(r, 404)
    assert await followup.count(CallAttempt) == 0


async def test_a_retried_call_attempt_is_recorded_once(followup: Followup) -> None:
    visit = (await followup.deliver())["visit_id"]
    c = followup.client
    headers = {**AGENT, "Idempotency-Key": "tablet-7-0001"}
    first = await c.post(f"/visits/{visit}/calls", json={"result": "no_answer"}, headers=headers)
    again = await c.post(f"/visits/{visit}/calls", json={"result": "no_answer"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    other = await c.post(f"/visits/{visit}/calls", json={"result": "reached"}, headers=headers)
    assert_problem(other, 422, "Idempotency-Key")
    assert await followup.count(CallAttempt) == 1


# --- surveys and complaints ------------------------------------------------------------

SERVQUAL = {
    d: {"expectation": 6, "perception": 4}
    for d in ("reliability", "responsiveness", "assurance", "empathy", "tangibles")
}


async def test_a_good_survey_closes_the_visit_without_a_complaint(followup: Followup) -> None:
    visit = (await followup.deliver())["visit_id"]
    c = followup.client
    body = {"overall": 9, "nps": 10, "servqual": SERVQUAL, "comments": "很好"}
    r = await c.post(f"/visits/{visit}/survey", json=body, headers=AGENT)
    assert r.status_code == 201, r.text
    assert r.json()["complaint_id"] is None
    assert r.json()["servqual"]["empathy"] == {"expectation": 6, "perception": 4}
    r = await c.get(f"/visits/{visit}", headers=AGENT)
    assert (r.json()["status"], r.json()["outcome"]) == ("closed", "surveyed")
    assert_problem(await c.post(f"/visits/{visit}/survey", json=body, headers=AGENT), 409)
    assert await followup.count(Complaint) == 0


async def test_survey_scores_out_of_range_are_refused(followup: Followup) -> None:
    visit = (await followup.deliver())["visit_id"]
    c = followup.client
    url = f"/visits/{visit}/survey"
    bad_servqual = {**SERVQUAL, "empathy": {"expectation": 8, "perception": 4}}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"overall": 0, "nps": 5}, "overall"),
        ({"overall": 11, "nps": 5}, "overall"),
        ({"overall": 5, "nps": 11}, "nps"),
        ({"overall": 5, "nps": -1}, "nps"),
        ({"overall": "ten", "nps": 5}, "overall"),
        ({"overall": 5, "nps": 5, "servqual": bad_servqual}, "servqual.empathy.expectation"),
        ({"overall": 5, "nps": 5, "concern": "weather"}, "concern"),
    ]
    for body, field in cases:
        assert_problem(await c.post(url, json=body, headers=AGENT), 422, field)
    assert await followup.count(Survey) == 0
    assert await followup.count(Complaint) == 0


async def test_a_low_survey_opens_a_complaint_worked_to_closed(followup: Followup) -> None:
    visit = (await followup.deliver())["visit_id"]
    c = followup.client
    body = {"overall": 2, "nps": 1, "comments": "刹车还响", "concern": "repair_quality"}
    r = await c.post(f"/visits/{visit}/survey", json=body, headers=AGENT)
    assert r.status_code == 201, r.text
    complaint_id = r.json()["complaint_id"]
    assert complaint_id
    followup.clock.tick = timedelta(seconds=1)

    r = await c.get(f"/complaints/{complaint_id}", headers=AGENT)
    assert r.status_code == 200
    case, etag = r.json(), r.headers["ETag"]
    assert (case["source"], case["severity"], case["category"]) == (
        "survey",
        "major",
        "repair_quality",
    )
    assert case["technician_id"] == "tech-7"
    assert case["repair_order_number"] == "RO-2026-000001"
    assert case["status"] == "open" and case["overdue"] is False

    url = f"/complaints/{complaint_id}"
    move = f"{url}/transitions"
    assert_problem(await c.post(move, json={"to": "in_progress"}, headers=AGENT), 428)
    r = await c.post(move, json={"to": "in_progress"}, headers={**AGENT, "If-Match": '"99"'})
    assert_problem(r, 412)
    r = await c.post(move, json={"to": "closed"}, headers={**AGENT, "If-Match": etag})
    assert_problem(r, 409)
    r = await c.post(move, json={"to": "in_progress"}, headers={**AGENT, "If-Match": etag})
    assert r.status_code == 200, r.text
    etag = r.headers["ETag"]
    assert r.json()["status"] == "in_progress"

    r = await c.post(f"{url}/actions", json={"action": "复检刹车片"}, headers=AGENT)
    assert r.status_code == 201, r.text
    r = await c.get(url, headers=AGENT)
    assert r.headers["ETag"] != etag  # an action is a change of the case
    etag = r.headers["ETag"]

    r = await c.post(move, json={"to": "resolved"}, headers={**AGENT, "If-Match": etag})
    assert_problem(r, 422, "root_cause")  # no root cause yet: the body lacks it
    r = await c.post(
        move, json={"to": "in_progress", "root_cause": "x"}, headers={**AGENT, "If-Match": etag}
    )
    assert_problem(r, 422, "root_cause")  # given only when resolving
    r = await c.patch(
        url,
        json={"root_cause": "卡钳导向销缺润滑", "compensation_amount": "200.005"},
        headers={**AGENT, "If-Match": etag},
    )
    assert_problem(r, 422, "compensation_amount")
    r = await c.patch(
        url,
        json={"root_cause": "卡钳导向销缺润滑", "compensation_amount": "200.50"},
        headers={**AGENT, "If-Match": etag},
    )
    assert r.status_code == 200, r.text
    assert r.json()["compensation_amount"] == "200.50"
    etag = r.headers["ETag"]
    r = await c.post(move, json={"to": "resolved"}, headers={**AGENT, "If-Match": etag})
    assert r.status_code == 200, r.text
    r = await c.post(
        move,
        json={"to": "closed", "note": "客户确认"},
        headers={**MANAGER, "If-Match": r.headers["ETag"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["closed_at"]
    r = await c.patch(url, json={"owner": "x"}, headers={**AGENT, "If-Match": r.headers["ETag"]})
    assert_problem(r, 409)

    r = await c.get(f"{url}/history", headers=AGENT)
    kinds = [e["kind"] for e in r.json()["items"]]
    assert kinds == ["opened", "status", "action", "changed", "status", "status"]
    assert r.json()["items"][3]["changes"]["compensation_amount"] == [None, "200.50"]


async def test_a_case_is_resolved_with_its_root_cause_in_one_request(followup: Followup) -> None:
    c = followup.client
    r = await c.post(
        "/complaints",
        json={
            "source": "walk_in",
            "severity": "minor",
            "category": "repair_quality",
            "description": "刹车异响又出现",
        },
        headers=AGENT,
    )
    assert r.status_code == 201, r.text
    url, etag = f"/complaints/{r.json()['id']}", r.headers["ETag"]
    r = await c.post(
        f"{url}/transitions", json={"to": "in_progress"}, headers={**AGENT, "If-Match": etag}
    )
    assert r.status_code == 200, r.text
    r = await c.post(
        f"{url}/transitions",
        json={"to": "resolved", "root_cause": "卡钳导向销缺润滑"},
        headers={**AGENT, "If-Match": r.headers["ETag"]},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["root_cause"]) == ("resolved", "卡钳导向销缺润滑")
    history = (await c.get(f"{url}/history", headers=AGENT)).json()["items"]
    assert {"root_cause": [None, "卡钳导向销缺润滑"]} in [e["changes"] for e in history]


async def test_a_stale_write_loses_even_after_passing_the_check(followup: Followup) -> None:
    c = followup.client
    r = await c.post(
        "/complaints",
        json={
            "source": "walk_in",
            "severity": "minor",
            "category": "waiting_time",
            "description": "waited two hours",
        },
        headers=AGENT,
    )
    assert r.status_code == 201, r.text
    url, etag = f"/complaints/{r.json()['id']}", r.headers["ETag"]
    first = await c.patch(url, json={"owner": "agent-2"}, headers={**AGENT, "If-Match": etag})
    assert first.status_code == 200
    second = await c.patch(url, json={"owner": "agent-3"}, headers={**AGENT, "If-Match": etag})
    assert_problem(second, 412)
    r = await c.get(url, headers=AGENT)
    assert r.json()["owner"] == "agent-2"


async def test_complaints_refuse_bad_input_roles_and_branches(followup: Followup) -> None:
    c = followup.client
    good = {
        "source": "call",
        "severity": "major",
        "category": "vehicle_damage",
        "description": "scratch on the door",
    }
    cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "severity": "critical"}, "severity"),
        ({**good, "category": "weather"}, "category"),
        ({**good, "source": "survey"}, "source"),
        ({**good, "description": ""}, "description"),
        ({**good, "repair_order_id": "RO-1"}, "repair_order_id"),
        ({**good, "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        assert_problem(await c.post("/complaints", json=body, headers=AGENT), 422, field)
    assert_problem(await c.post("/complaints", json=good, headers=auth("advisor")), 403)
    erp = {**good, "source": "erp"}
    assert_problem(await c.post("/complaints", json=erp, headers=AGENT), 403)
    assert_problem(await c.post("/complaints", json=good, headers=auth("erp")), 403)
    assert await followup.count(Complaint) == 0
    assert await followup.count(OutboxEvent) == 0

    r = await c.post("/complaints", json=erp, headers=auth("erp"))
    assert r.status_code == 201, r.text
    assert r.json()["due_at"] == "2026-12-01T02:00:00Z"  # major: 24 hours
    r = await c.get(f"/complaints/{r.json()['id']}", headers=auth("manager", "BR02"))
    assert_problem(r, 404)
    r = await c.get("/complaints", params={"status": "open"}, headers=auth("advisor"))
    assert len(r.json()["items"]) == 1
    assert_problem(await c.get("/complaints", params={"status": "x"}, headers=AGENT), 422, "status")


async def test_overdue_cases_are_listed_and_escalated(followup: Followup) -> None:
    c = followup.client
    body = {"source": "call", "severity": "minor", "category": "price", "description": "bill"}
    r = await c.post("/complaints", json=body, headers=AGENT)
    case_id = r.json()["id"]
    followup.clock.now = MONDAY + timedelta(hours=73)
    r = await c.get("/complaints", params={"overdue": "true"}, headers=MANAGER)
    assert [x["id"] for x in r.json()["items"]] == [case_id]
    fired = await timers.run_timers(followup.db, followup.settings)
    assert fired["escalated_complaints"] == 1
    r = await c.get(f"/complaints/{case_id}", headers=MANAGER)
    assert r.json()["owner"] == r.json()["escalated_to"] == "manager-zhang"


async def test_escalated_cases_are_listed_apart(followup: Followup) -> None:
    c = followup.client
    body = {"source": "call", "severity": "minor", "category": "price", "description": "bill"}
    late = (await c.post("/complaints", json=body, headers=AGENT)).json()["id"]
    followup.clock.now = MONDAY + timedelta(hours=73)
    fresh = (await c.post("/complaints", json=body, headers=AGENT)).json()["id"]
    await timers.run_timers(followup.db, followup.settings)
    r = await c.get("/complaints", params={"escalated": "true"}, headers=MANAGER)
    assert [x["id"] for x in r.json()["items"]] == [late]
    r = await c.get("/complaints", params={"escalated": "false"}, headers=AGENT)
    assert [x["id"] for x in r.json()["items"]] == [fresh]
    r = await c.get("/complaints", params={"escalated": "maybe"}, headers=AGENT)
    assert_problem(r, 422, "escalated")


async def test_the_delivered_order_behind_a_visit(followup: Followup) -> None:
    c = followup.client
    delivery = await followup.deliver(
        jobs=[("BRAKES", "repair", "tech-7"), ("OIL", "maintenance", "tech-8")],
        number="RO-2026-000777",
    )
    order_id = str(delivery["event"].repair_order_id)
    r = await c.get(f"/delivered-orders/{order_id}", headers=AGENT)
    assert r.status_code == 200, r.text
    order = r.json()
    assert (order["number"], order["odometer_km"], order["has_fix"]) == (
        "RO-2026-000777",
        42000,
        True,
    )
    assert [(j["op_code"], j["kind"], j["technician_id"]) for j in order["jobs"]] == [
        ("BRAKES-01", "repair", "tech-7"),
        ("OIL-01", "maintenance", "tech-8"),
    ]
    r = await c.get(f"/delivered-orders/{order_id}", headers=auth("followup_agent", "BR02"))
    assert r.status_code == 404
    r = await c.get(f"/delivered-orders/{uuid.uuid4()}", headers=AGENT)
    assert r.status_code == 404
    r = await c.get(f"/delivered-orders/{order_id}", headers=auth("technician"))
    assert r.status_code == 403


# --- comebacks and KPIs ----------------------------------------------------------------


async def test_kpis_report_major_complaint_rate_and_first_time_fix(followup: Followup) -> None:
    vehicle = uuid.uuid4()
    first = await followup.deliver(vehicle_id=vehicle)
    await followup.deliver(
        vehicle_id=vehicle, at=MONDAY + timedelta(days=5), number="RO-2026-000002"
    )
    await followup.deliver(jobs=[("OIL", "maintenance", "tech-2")], number="RO-2026-000003")
    c = followup.client
    r = await c.post(
        f"/visits/{first['visit_id']}/survey",
        json={"overall": 3, "nps": 2, "servqual": SERVQUAL},
        headers=AGENT,
    )
    assert r.status_code == 201
    r = await c.get("/comebacks", headers=MANAGER)
    [comeback] = r.json()["items"]
    assert comeback["earlier_repair_order_number"] == "RO-2026-000001"
    assert comeback["technician_id"] == "tech-7"

    r = await c.get(
        "/kpis", params={"from_on": "2026-11-30", "to_on": "2026-12-31"}, headers=MANAGER
    )
    assert r.status_code == 200, r.text
    kpi = r.json()
    assert kpi["delivered_orders"] == 3
    assert kpi["major_complaints"] == 1
    assert kpi["major_complaint_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert kpi["major_complaint_target"] == 0.01
    assert kpi["major_complaint_target_met"] is False
    assert (kpi["fix_orders"], kpi["comebacks"]) == (2, 1)
    assert kpi["first_time_fix_rate"] == 0.5
    assert kpi["surveys"] == 1 and kpi["nps"] == -100.0
    assert {g["dimension"]: g["gap"] for g in kpi["servqual"]}["reliability"] == -2.0

    bad = {"from_on": "2026-12-31", "to_on": "2026-12-01"}
    assert_problem(await c.get("/kpis", params=bad, headers=MANAGER), 422, "to_on")
    wide = {"from_on": "2020-01-01", "to_on": "2026-12-01"}
    assert_problem(await c.get("/kpis", params=wide, headers=MANAGER), 422, "to_on")
    assert_problem(await c.get("/kpis", params={"from_on": "x"}, headers=MANAGER), 422, "from_on")
    assert_problem(await c.get("/kpis", headers=auth("technician")), 403)


# --- service reminders -----------------------------------------------------------------


async def test_service_reminders_due_list_and_outcome(followup: Followup) -> None:
    vehicle = uuid.uuid4()
    followup.settings.service_interval_days = 30  # so the reminder falls due in the test
    await followup.deliver(vehicle_id=vehicle)
    event = delivered(vehicle_id=vehicle, at=MONDAY + timedelta(days=10), number="RO-2026-000002")
    event.declined_work = ["更换雨刮片"]
    async with followup.db.transaction() as session:
        await service.record_delivery(session, event, followup.settings)
    c = followup.client
    r = await c.get("/reminders", params={"view": "open"}, headers=AGENT)
    assert r.status_code == 200, r.text
    [reminder] = r.json()["items"]  # the first visit's reminder was superseded
    assert reminder["last_repair_order_number"] == "RO-2026-000002"
    assert reminder["declined_work"] == ["更换雨刮片"]
    assert reminder["due_reason"] == "date"
    # Due 9 January, a Saturday: sent on Monday the 11th (local midnight), a working day.
    assert reminder["due_at"] == "2027-01-10T16:00:00Z"
    assert (await c.get("/reminders", headers=AGENT)).json()["items"] == []

    followup.clock.now = datetime(2026, 12, 28, 2, 0, tzinfo=UTC)  # within the 14-day lead
    r = await c.get("/reminders", headers=AGENT)
    assert [x["id"] for x in r.json()["items"]] == [reminder["id"]]
    url = f"/reminders/{reminder['id']}/outcome"
    assert_problem(await c.post(url, json={"outcome": "maybe"}, headers=AGENT), 422, "outcome")
    assert_problem(await c.post(url, json={"outcome": "booked"}, headers=auth("advisor")), 403)
    r = await c.post(url, json={"outcome": "booked"}, headers=auth("followup_agent", "BR02"))
    assert_problem(r, 404)
    r = await c.post(url, json={"outcome": "sold_car", "note": "卖了"}, headers=AGENT)
    assert r.status_code == 200, r.text  # the reminder changed; nothing new was made
    assert r.json()["status"] == "sold_car"
    assert_problem(await c.post(url, json={"outcome": "booked"}, headers=AGENT), 409)
    assert (await c.get("/reminders", headers=AGENT)).json()["items"] == []
    assert_problem(await c.get("/reminders", params={"view": "x"}, headers=AGENT), 422, "view")
