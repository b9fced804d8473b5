"""The audit trail (`shared/audit.py`) in process on a real database and nats-server: a
change writes exactly one entry in its own transaction, a refused or rolled-back change
none; the manager reads the branch's entries per object and per person, newest first;
another branch and other roles see nothing; retention deletes old entries."""

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlmodel import func, select

from services.workorders import service
from services.workorders.models import AuditEntry, IdempotencyRecord, InboxEvent, OutboxEvent
from services.workorders.schemas import OrderTransition
from shared import audit
from shared.auth import Role, User, issue_dev_token
from shared.housekeeping import prune
from shared.settings import ServiceSettings
from tests.harness import JWT_SECRET, auth
from tests.test_bad_input import assert_problem
from tests.test_followup_api import AGENT, Followup, followup  # noqa: F401  (fixture)
from tests.test_reception_estimates import Reception, ids, reception  # noqa: F401  (fixture)
from tests.test_records_files import runtime_of
from tests.test_records_lending import act, ask, new_item, person, records, today  # noqa: F401
from tests.test_workorders_api import ADVISOR, CASHIER, Workorders, approved, wo  # noqa: F401
from tests.test_workorders_payments import work_to_ready

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

FOREMAN_LIU = {
    "Authorization": "Bearer "
    + issue_dev_token(JWT_SECRET, role="foreman", sub="foreman-liu", name="刘工长")
}
MANAGER = auth("manager")
ADMIN = auth("admin")
OTHER_MANAGER = auth("manager", branch="BR02")


async def entries(db: Any) -> list[SimpleNamespace]:
    async with db.reader() as session:
        rows = (await session.exec(select(AuditEntry).order_by(AuditEntry.at))).all()
        return [SimpleNamespace(**row.model_dump()) for row in rows]


async def cancel(
    workorders: Workorders, order: dict[str, Any], reason: str = "customer withdrew"
) -> None:
    r = await workorders.client.post(
        f"/repair-orders/{order['id']}/transitions",
        headers={**FOREMAN_LIU, "If-Match": order["etag"]},
        json={"to": "cancelled", "reason": reason},
    )
    assert r.status_code == 200, r.text


async def audit_page(client: httpx.AsyncClient, headers: dict[str, str], **query: Any) -> Any:
    r = await client.get("/audit", params=query, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_change_writes_one_entry_naming_who_what_and_when(wo: Workorders) -> None:  # noqa: F811
    order = await wo.consent(approved())
    assert await entries(wo.db) == []  # an order opened from the customer's consent
    before = datetime.now(UTC)
    await cancel(wo, order)
    [entry] = await entries(wo.db)
    assert (entry.action, entry.object_type, entry.object_id) == (
        "repair_order.transition",
        "repair_order",
        order["id"],
    )
    assert (entry.branch, entry.actor_id, entry.actor_name) == ("BR01", "foreman-liu", "刘工长")
    assert entry.changes == {
        "status": ["open", "cancelled"],
        "cancelled_reason": "customer withdrew",
    }
    assert before <= entry.at <= datetime.now(UTC)


async def test_a_refused_or_rolled_back_change_writes_none(wo: Workorders) -> None:  # noqa: F811
    order = await wo.consent(approved())
    # Refused by the state machine: 409, nothing written.
    r = await wo.client.post(
        f"/repair-orders/{order['id']}/transitions",
        headers={**FOREMAN_LIU, "If-Match": order["etag"]},
        json={"to": "qc"},
    )
    assert_problem(r, 409)
    # Refused on a stale ETag: 412.
    r = await wo.client.post(
        f"/repair-orders/{order['id']}/transitions",
        headers={**FOREMAN_LIU, "If-Match": '"999"'},
        json={"to": "cancelled"},
    )
    assert_problem(r, 412)
    # The change made, then its transaction rolled back: the entry goes with it.
    by = User(id="foreman-liu", name="刘工长", roles=frozenset({Role.foreman}), branch="BR01")
    with pytest.raises(RuntimeError, match="after the change"):
        async with wo.db.transaction() as session:
            await service.transition_order(
                session,
                uuid.UUID(order["id"]),
                OrderTransition(to="cancelled", reason="x"),
                by,
                if_match=order["etag"],
            )
            raise RuntimeError("something failed after the change")
    assert await entries(wo.db) == []
    assert (await wo.order(order["id"]))["status"] == "open"
    # The same change committed: one entry, with the order's change.
    await cancel(wo, order)
    assert [e.action for e in await entries(wo.db)] == ["repair_order.transition"]


async def test_the_manager_reads_entries_per_object_and_per_person(wo: Workorders) -> None:  # noqa: F811
    first, second, third = [await wo.consent(approved()) for _ in range(3)]
    await cancel(wo, first, "first")
    await cancel(wo, second, "second")
    r = await wo.client.post(  # another person
        f"/repair-orders/{third['id']}/transitions",
        headers={**auth("foreman"), "If-Match": third["etag"]},
        json={"to": "cancelled", "reason": "third"},
    )
    assert r.status_code == 200, r.text

    c = wo.client
    per_object = await audit_page(c, MANAGER, object_type="repair_order", object_id=second["id"])
    assert [e["changes"]["cancelled_reason"] for e in per_object["items"]] == ["second"]
    assert per_object["next_cursor"] is None
    assert per_object["items"][0]["actor_name"] == "刘工长"

    per_person = await audit_page(c, ADMIN, actor="foreman-liu")
    assert [e["object_id"] for e in per_person["items"]] == [second["id"], first["id"]]

    # Newest first, page by page.
    everything = await audit_page(c, MANAGER, limit=2)
    assert [e["changes"]["cancelled_reason"] for e in everything["items"]] == ["third", "second"]
    rest = await audit_page(c, MANAGER, limit=2, cursor=everything["next_cursor"])
    assert [e["changes"]["cancelled_reason"] for e in rest["items"]] == ["first"]
    assert rest["next_cursor"] is None

    # A time window: from inclusive, to exclusive.
    at = datetime.fromisoformat(per_object["items"][0]["at"])
    window = await audit_page(
        c, MANAGER, **{"from": at.isoformat(), "to": (at + timedelta(microseconds=1)).isoformat()}
    )
    assert second["id"] in [e["object_id"] for e in window["items"]]
    later = await audit_page(c, MANAGER, **{"from": (at + timedelta(hours=1)).isoformat()})
    assert later["items"] == []
    r = await c.get(
        "/audit",
        params={"from": at.isoformat(), "to": (at - timedelta(hours=1)).isoformat()},
        headers=MANAGER,
    )
    assert_problem(r, 422, "to")
    assert_problem(await c.get("/audit", params={"from": "2026-12-01"}, headers=MANAGER), 422)


async def test_only_the_branch_manager_and_admin_read_it(wo: Workorders) -> None:  # noqa: F811
    order = await wo.consent(approved())
    await cancel(wo, order)
    assert (await audit_page(wo.client, OTHER_MANAGER))["items"] == []
    assert len((await audit_page(wo.client, MANAGER))["items"]) == 1
    for role in ("technician", "foreman", "advisor", "cashier"):
        assert_problem(await wo.client.get("/audit", headers=auth(role)), 403)
    assert_problem(await wo.client.get("/audit"), 401)


async def test_retention_deletes_entries_older_than_the_setting(wo: Workorders) -> None:  # noqa: F811
    assert ServiceSettings().audit_retention_days == 3650
    now = datetime.now(UTC)
    async with wo.db.transaction() as session:
        for days in (400, 10):
            audit.record(
                session,
                action="test.kept" if days == 10 else "test.old",
                object_type="setting",
                object_id=f"s-{days}",
                branch="BR01",
                actor=None,
                changes={"days": days},
                at=now - timedelta(days=days),
            )
    removed = await prune(
        wo.db,
        outbox=OutboxEvent,
        inbox=InboxEvent,
        idempotency=IdempotencyRecord,
        outbox_keep=timedelta(days=7),
        inbox_keep=timedelta(days=30),
        idempotency_keep=timedelta(hours=24),
        audit=AuditEntry,
        audit_keep=timedelta(days=365),
    )
    assert removed["audit"] == 1
    [kept] = await entries(wo.db)
    assert (kept.action, kept.actor_id, kept.changes) == ("test.kept", "system", {"days": 10})


async def test_a_complaint_change_is_audited_in_followup(followup: Followup) -> None:  # noqa: F811
    c = followup.client
    r = await c.post(
        "/complaints",
        json={
            "source": "walk_in",
            "severity": "minor",
            "category": "repair_quality",
            "description": "刹车异响",
        },
        headers=AGENT,
    )
    assert r.status_code == 201, r.text
    complaint_id, etag = r.json()["id"], r.headers["ETag"]
    r = await c.patch(
        f"/complaints/{complaint_id}",
        json={"severity": "major"},
        headers={**AGENT, "If-Match": etag},
    )
    assert r.status_code == 200, r.text
    # A refused transition (open cannot be closed straight away) writes nothing.
    r = await c.post(
        f"/complaints/{complaint_id}/transitions",
        json={"to": "resolved"},
        headers={**AGENT, "If-Match": r.headers["ETag"]},
    )
    assert r.status_code in (409, 422), r.text
    page = await audit_page(c, MANAGER, object_type="complaint", object_id=complaint_id)
    assert [e["action"] for e in page["items"]] == ["complaint.changed", "complaint.opened"]
    assert page["items"][0]["changes"]["severity"] == ["minor", "major"]
    async with followup.db.reader() as session:
        model = followup.db.sessionmaker.kw["info"][audit.AUDIT_MODEL]
        assert (await session.exec(select(func.count()).select_from(model))).one() == 2


async def test_entry_ids_are_uuid7_in_the_order_written() -> None:
    ids = [audit.ordered_id() for _ in range(1000)]
    assert ids == sorted(ids) and len(set(ids)) == 1000
    assert {i.version for i in ids} == {7}
    assert sorted(str(i) for i in ids) == [str(i) for i in ids]  # SQLite compares the text


async def test_estimates_and_consents_are_audited_in_reception(reception: Reception) -> None:  # noqa: F811
    estimate = await reception.estimate()
    labour, part_line, fee = ids(estimate)
    partial = await reception.consent(estimate, {labour: "approved"})
    assert partial.status_code == 200, partial.text
    # Answered already: refused, nothing written.
    assert_problem(await reception.consent(partial, {labour: "declined"}), 409)
    done = await reception.consent(partial, {part_line: "declined", fee: "approved"})
    assert done.status_code == 200, done.text
    page = await audit_page(
        reception.client, MANAGER, object_type="estimate", object_id=estimate.json()["id"]
    )
    assert [e["action"] for e in page["items"]] == [
        "estimate.consent",
        "estimate.consent",
        "estimate.created",
    ]
    newest = page["items"][0]["changes"]
    assert newest["decisions"] == {part_line: "declined", fee: "approved"}
    assert (newest["by"], newest["channel"], newest["approved"]) == ("王芳", "in_person", True)
    assert page["items"][2]["changes"]["revision"] == 1
    assert len(page["items"][2]["changes"]["lines"]) == 3


async def test_loans_are_audited_in_records(records: httpx.AsyncClient) -> None:  # noqa: F811
    item = await new_item(records)
    loan = await ask(records, item, person("li"))
    due = str(today(records) + timedelta(days=7))
    # A borrower may not approve: refused, nothing written.
    assert_problem(await act(records, loan, "approve", who=person("li"), due_on=due), 403)
    clerk = person("clerk-zhou", "records_clerk")
    approved = (await act(records, loan, "approve", who=clerk, due_on=due)).json()
    out = (await act(records, approved, "hand-out", who=clerk)).json()
    assert out["status"] == "out"
    page = await audit_page(records, MANAGER, actor="clerk-zhou")
    assert [(e["action"], e["object_id"]) for e in page["items"]] == [
        ("loan.hand-out", loan["id"]),
        ("loan.approve", loan["id"]),
    ]
    assert page["items"][0]["changes"]["status"] == ["approved", "out"]
    assert page["items"][1]["changes"]["due_on"] >= due


async def test_webhook_settings_are_audited_without_their_secret(
    records: httpx.AsyncClient,  # noqa: F811
) -> None:
    settings = runtime_of(records).settings
    settings.webhook_allow_private_targets = settings.webhook_allow_http = True
    url = "http://127.0.0.1:9/erp/hook"
    r = await records.post(
        "/webhooks/endpoints", headers=MANAGER, json={"url": url, "event_types": ["parts.used"]}
    )
    assert r.status_code == 201, r.text
    endpoint, secret = r.json(), r.json()["secret"]
    r = await records.patch(
        f"/webhooks/endpoints/{endpoint['id']}",
        headers={**MANAGER, "If-Match": r.headers["ETag"]},
        json={"active": False, "description": "paused for the ERP upgrade"},
    )
    assert r.status_code == 200, r.text
    page = await audit_page(records, ADMIN, object_type="webhook_endpoint")
    assert [e["action"] for e in page["items"]] == [
        "webhook_endpoint.changed",
        "webhook_endpoint.created",
    ]
    assert page["items"][0]["changes"] == {
        "active": [True, False],
        "description": ["", "paused for the ERP upgrade"],
    }
    assert page["items"][1]["changes"]["url"] == url
    assert secret not in str(page)


async def test_settlement_with_its_discounts_and_delivery_are_audited(wo: Workorders) -> None:  # noqa: F811
    order = await work_to_ready(wo)
    url = f"/repair-orders/{order['id']}/settlement"
    headers = {**CASHIER, "If-Match": order["etag"]}
    discounts = [{"amount": "40", "reason": "会员折扣"}]
    wrong = {"discounts": discounts, "payments": [{"method": "wechat", "amount": "1.00"}]}
    before = await entries(wo.db)
    refused = assert_problem(await wo.client.post(url, headers=headers, json=wrong), 422)
    assert len(await entries(wo.db)) == len(before)  # refused: nothing written
    due = refused["detail"].rsplit(" ", 1)[-1]
    body = {"discounts": discounts, "payments": [{"method": "wechat", "amount": due}]}
    r = await wo.client.post(url, headers=headers, json=body)
    assert r.status_code == 200, r.text
    current = await wo.order(order["id"])
    handover = {
        "charges_explained": True,
        "old_parts_offered": True,
        "keys_returned": True,
        "declined_work_told": True,
    }
    r = await wo.client.post(
        f"/repair-orders/{order['id']}/delivery",
        headers={**ADVISOR, "If-Match": current["etag"]},
        json=handover,
    )
    assert r.status_code == 200, r.text
    items = (await audit_page(wo.client, MANAGER, object_id=order["id"]))["items"]
    assert [e["action"] for e in items] == [
        "repair_order.delivered",
        "repair_order.settled",
        "repair_order.transition",  # ready
        "repair_order.transition",  # qc
    ]
    settled = items[1]["changes"]
    assert settled["status"] == ["ready", "settled"]
    assert settled["discounts"] == [
        {"line_id": None, "percent": None, "amount": "40", "reason": "会员折扣"}
    ]
    assert settled["customer_due"] == due and settled["discount_total"] != "0"
    assert items[0]["changes"]["status"] == ["settled", "delivered"]
    assert items[0]["changes"]["handover"]["keys_returned"] is True
