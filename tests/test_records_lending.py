"""Lending: the loan's transition table exhaustively, and its rules over the API on a real
database (an item is never out twice, even when the database is asked directly)."""

import itertools
import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from services.records import lending
from services.records.lending import TRANSITIONS, LoanAct, next_status
from services.records.models import Loan, LoanStatus, OutboxEvent
from shared.auth import User, issue_dev_token
from shared.events import decode, utcnow
from shared.problems import Conflict
from tests.harness import JWT_SECRET, NatsServer, auth
from tests.test_bad_input import assert_problem
from tests.test_records_files import PDF, RecordsClient, runtime_of, upload

CLERK = auth("records_clerk")

EXPECTED = {
    ("requested", "approve"): "approved",
    ("requested", "reject"): "rejected",
    ("requested", "cancel"): "cancelled",
    ("approved", "cancel"): "cancelled",
    ("approved", "hand-out"): "out",
    ("out", "return"): "returned",
    ("out", "report-lost"): "lost",
}


@pytest.mark.parametrize(
    ("status", "act"), list(itertools.product(list(LoanStatus), list(LoanAct)))
)
def test_every_status_and_action(status: LoanStatus, act: LoanAct) -> None:
    expected = EXPECTED.get((status.value, act.value))
    if expected is None:
        with pytest.raises(Conflict):
            next_status(status, act)
    else:
        assert next_status(status, act) == LoanStatus(expected)


def test_closed_loans_go_nowhere() -> None:
    assert {s for s, _ in TRANSITIONS} == {
        LoanStatus.requested,
        LoanStatus.approved,
        LoanStatus.out,
    }


def person(sub: str, role: str = "technician", branch: str = "BR01") -> dict[str, str]:
    token = issue_dev_token(JWT_SECRET, role=role, branch=branch, sub=sub, name=sub.title())
    return {"Authorization": f"Bearer {token}"}


@pytest_asyncio.fixture
async def records(database_url: str, nats_server: NatsServer, tmp_path):
    async with RecordsClient(database_url, nats_server, tmp_path / "files") as client:
        yield client


def today(client, branch: str = "BR01") -> date:
    """The branch's date, as the service reckons it."""
    return lending.today(runtime_of(client).settings, branch)


async def new_item(client, title: str = "Golf 8 workshop manual, copy 1") -> str:
    r = await client.post("/lending/items", headers=CLERK, json={"title": title})
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def ask(client, item_id: str, who: dict) -> dict:
    r = await client.post("/lending/loans", headers=who, json={"item_id": item_id})
    assert r.status_code == 201, r.text
    return r.json()


async def act(client, loan: dict, action: str, who: dict = CLERK, **body):
    return await client.post(
        f"/lending/loans/{loan['id']}/{action}",
        headers={**who, "If-Match": loan["etag"]},
        json=body,
    )


@pytest.mark.asyncio
@pytest.mark.store
async def test_a_loan_from_request_to_return(records):
    item = await new_item(records)
    li = person("li")
    loan = await ask(records, item, li)
    assert loan["status"] == "requested" and loan["borrower_name"] == "Li"
    assert_problem(await act(records, loan, "approve", who=li, due_on=str(today(records))), 403)
    assert_problem(await act(records, loan, "approve"), 422, "due_on")
    assert_problem(await act(records, loan, "approve", due_on="2000-01-01"), 422, "due_on")
    assert_problem(
        await records.post(
            f"/lending/loans/{loan['id']}/approve",
            headers=CLERK,
            json={"due_on": str(today(records) + timedelta(days=7))},
        ),
        428,
    )
    r = await act(records, loan, "approve", due_on=str(today(records) + timedelta(days=7)))
    assert r.status_code == 200, r.text
    approved = r.json()
    assert_problem(await act(records, loan, "hand-out"), 412)  # stale ETag
    assert_problem(await act(records, approved, "return", condition="good"), 409)
    out = (await act(records, approved, "hand-out")).json()
    assert out["status"] == "out" and out["handed_out_at"]
    assert_problem(await act(records, out, "return"), 422, "condition")
    assert_problem(await act(records, out, "return", condition="shiny"), 422, "condition")
    back = (await act(records, out, "return", condition="worn", note="coffee stain p.12")).json()
    assert (back["status"], back["return_condition"]) == ("returned", "worn")
    # The item can go out again.
    again = await ask(records, item, person("wang"))
    assert (await act(records, again, "approve", due_on=str(today(records)))).status_code == 200

    history = (await records.get(f"/lending/items/{item}/loans", headers=CLERK)).json()
    assert [h["status"] for h in history["items"]] == ["approved", "returned"]
    assert history["next_cursor"] is None
    newest = (
        await records.get(f"/lending/items/{item}/loans", headers=CLERK, params={"limit": 1})
    ).json()
    assert [h["status"] for h in newest["items"]] == ["approved"]
    older = await records.get(
        f"/lending/items/{item}/loans", headers=CLERK, params={"cursor": newest["next_cursor"]}
    )
    assert [h["status"] for h in older.json()["items"]] == ["returned"]
    assert older.json()["next_cursor"] is None
    mine = (await records.get("/lending/people/li/loans", headers=li)).json()
    assert [h["id"] for h in mine["items"]] == [loan["id"]]
    assert_problem(await records.get("/lending/people/wang/loans", headers=li), 403)
    assert_problem(await records.get(f"/lending/loans/{again['id']}", headers=li), 404)


@pytest.mark.asyncio
@pytest.mark.store
async def test_an_item_is_never_out_twice(records):
    item = await new_item(records)
    first = await ask(records, item, person("li"))
    second = await ask(records, item, person("wang"))
    due = str(today(records) + timedelta(days=3))
    assert (await act(records, first, "approve", due_on=due)).status_code == 200
    body = assert_problem(await act(records, second, "approve", due_on=due), 409)
    assert body["loan_id"] == first["id"]
    # Even a writer that skips the check is stopped by the database.
    db = runtime_of(records).db
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            loan = await session.get(Loan, uuid.UUID(second["id"]))
            assert loan is not None
            loan.status = LoanStatus.out
    # Cancelling the first frees the item.
    r = await records.get(f"/lending/loans/{first['id']}", headers=CLERK)
    assert (await act(records, {**first, "etag": r.headers["etag"]}, "cancel")).status_code == 200
    assert (await act(records, second, "approve", due_on=due)).status_code == 200


@pytest.mark.asyncio
@pytest.mark.store
async def test_borrower_cancels_own_request_and_lost_items(records):
    item = await new_item(records)
    li = person("li")
    loan = await ask(records, item, li)
    assert_problem(await act(records, loan, "cancel", who=person("wang")), 404)
    assert (await act(records, loan, "cancel", who=li)).json()["status"] == "cancelled"
    loan = await ask(records, item, li)
    approved = (await act(records, loan, "approve", due_on=str(today(records)))).json()
    out = (await act(records, approved, "hand-out")).json()
    lost = (await act(records, out, "report-lost", note="left in a customer's car")).json()
    assert lost["status"] == "lost"
    assert (await records.get(f"/lending/items/{item}", headers=li)).json()["lost_at"]
    assert_problem(await records.post("/lending/loans", headers=li, json={"item_id": item}), 409)


@pytest.mark.asyncio
@pytest.mark.store
async def test_overdue_list(records):
    items = [await new_item(records, f"copy {i}") for i in range(3)]
    loans = []
    for i, item in enumerate(items):
        loan = await ask(records, item, person(f"p{i}"))
        loan = (await act(records, loan, "approve", due_on=str(today(records)))).json()
        loans.append((await act(records, loan, "hand-out")).json())
    # Two of them were due earlier: set as if approved days ago.
    db = runtime_of(records).db
    async with db.transaction() as session:
        for loan, days in ((loans[0], 2), (loans[1], 5)):
            row = await session.get(Loan, uuid.UUID(loan["id"]))
            assert row is not None
            row.due_on = today(records) - timedelta(days=days)
    r = await records.get("/lending/overdue", headers=CLERK)
    assert r.status_code == 200
    assert [x["id"] for x in r.json()["items"]] == [loans[1]["id"], loans[0]["id"]]
    assert all(x["overdue"] for x in r.json()["items"])
    assert_problem(await records.get("/lending/overdue", headers=auth("technician")), 403)
    async with db.reader() as session:
        later = await lending.overdue(
            session,
            runtime_of(records).settings,
            User(id="c", name="c", roles=frozenset(), branch="BR01"),
            10,
            # The day after the third is due (today, or the branch's next working day).
            on=date.fromisoformat(loans[2]["due_on"]) + timedelta(days=1),
        )
    assert len(later) == 3
    assert utcnow()


@pytest.mark.asyncio
@pytest.mark.store
async def test_the_desk_lists_items_and_loans_by_state(records):
    """The lending desk's lists: the branch's shelf, and its loans by state."""
    items = [await new_item(records, f"shelf copy {i}") for i in range(3)]
    elsewhere = await records.post(
        "/lending/items", headers=auth("records_clerk", "BR02"), json={"title": "other branch"}
    )
    assert elsewhere.status_code == 201
    shelf = (await records.get("/lending/items", headers=CLERK, params={"limit": 2})).json()
    assert [i["id"] for i in shelf["items"]] == [items[2], items[1]]
    rest = await records.get(
        "/lending/items", headers=CLERK, params={"cursor": shelf["next_cursor"]}
    )
    assert [i["id"] for i in rest.json()["items"]] == [items[0]]
    assert rest.json()["next_cursor"] is None

    waiting = await ask(records, items[0], person("li"))
    approved = await ask(records, items[1], person("wang"))
    approved = (await act(records, approved, "approve", due_on=str(today(records)))).json()
    out = await ask(records, items[2], person("zhou"))
    out = (await act(records, out, "approve", due_on=str(today(records)))).json()
    out = (await act(records, out, "hand-out")).json()

    async def listed(*states: str) -> list[str]:
        r = await records.get("/lending/loans", headers=CLERK, params={"status": list(states)})
        assert r.status_code == 200, r.text
        return [loan["id"] for loan in r.json()["items"]]

    assert await listed("requested") == [waiting["id"]]
    assert await listed("approved", "out") == [out["id"], approved["id"]]
    assert await listed() == [out["id"], approved["id"], waiting["id"]]
    other = await records.get("/lending/loans", headers=auth("records_clerk", "BR02"))
    assert other.json()["items"] == []
    assert_problem(await records.get("/lending/loans", headers=CLERK, params={"status": "x"}), 422)
    for role in ("technician", "manager"):
        assert_problem(await records.get("/lending/loans", headers=auth(role)), 403)
        assert_problem(await records.get("/lending/items", headers=auth(role)), 403)


@pytest.mark.asyncio
@pytest.mark.store
async def test_bad_lending_input(records):
    item = await new_item(records)
    li = person("li")
    assert_problem(await records.post("/lending/items", headers=li, json={"title": "x"}), 403)
    assert_problem(
        await records.post("/lending/items", headers=CLERK, json={"title": ""}), 422, "title"
    )
    assert_problem(
        await records.post(
            "/lending/items",
            headers=CLERK,
            json={"title": "x", "document_id": "00000000-0000-0000-0000-000000000000"},
        ),
        422,
        "document_id",
    )
    assert_problem(
        await records.post("/lending/loans", headers=li, json={"item_id": "nope"}), 422, "item_id"
    )
    assert_problem(
        await records.post(
            "/lending/loans", headers=li, json={"item_id": "00000000-0000-0000-0000-000000000000"}
        ),
        422,
        "item_id",
    )
    assert_problem(
        await records.post(
            "/lending/loans", headers=person("x", branch="BR02"), json={"item_id": item}
        ),
        422,
        "item_id",
    )
    loan = await ask(records, item, li)
    assert_problem(await act(records, loan, "teleport"), 422, "action")
    assert_problem(await act(records, loan, "approve", due_on="tomorrow"), 422, "due_on")
    assert_problem(await act(records, loan, "approve", extra=1), 422, "extra")
    key = {**CLERK, "If-Match": loan["etag"], "Idempotency-Key": "ap-1"}
    body = {"due_on": str(today(records) + timedelta(days=1))}
    first = await records.post(f"/lending/loans/{loan['id']}/approve", headers=key, json=body)
    replay = await records.post(f"/lending/loans/{loan['id']}/approve", headers=key, json=body)
    assert first.status_code == replay.status_code == 200
    assert replay.headers.get("idempotent-replayed") == "true"


@pytest.mark.asyncio
@pytest.mark.store
async def test_a_restricted_document_is_readable_while_it_is_lent(records):
    file_id = (await upload(records, PDF, role="records_clerk")).json()["id"]
    r = await records.post(
        "/library/documents",
        headers=CLERK,
        json={
            "title": "ECU flashing guide",
            "category": "manual",
            "file_id": file_id,
            "confidential": True,
            "allowed_roles": ["foreman"],
        },
    )
    document = r.json()
    r = await records.post(
        "/lending/items",
        headers=CLERK,
        json={
            "title": "ECU flashing guide",
            "kind": "restricted_document",
            "document_id": document["id"],
        },
    )
    item = r.json()["id"]
    li = person("li")
    content = f"/library/documents/{document['id']}/content"
    assert_problem(await records.get(content, headers=li), 403)
    loan = await ask(records, item, li)
    approved = (await act(records, loan, "approve", due_on=str(today(records)))).json()
    assert_problem(await records.get(content, headers=li), 403)  # approved is not out yet
    out = (await act(records, approved, "hand-out")).json()
    assert (await records.get(content, headers=li)).content == PDF
    assert_problem(await records.get(content, headers=person("wang")), 403)
    await act(records, out, "return", condition="good")
    assert_problem(await records.get(content, headers=li), 403)


@pytest.mark.asyncio
@pytest.mark.store
async def test_overdue_loans_are_reminded_once_a_day(records):
    item = await new_item(records, "Wiring diagrams binder")
    loan = await ask(records, item, person("li"))
    loan = (await act(records, loan, "approve", due_on=str(today(records)))).json()
    await act(records, loan, "hand-out")
    db, settings = runtime_of(records).db, runtime_of(records).settings
    # Due today, or on the branch's next working day when it is closed today.
    day = date.fromisoformat(loan["due_on"])
    assert (
        await lending.send_overdue_reminders(db, settings, on=day) == 0
    )  # due that day: not late yet
    tomorrow = day + timedelta(days=1)
    assert await lending.send_overdue_reminders(db, settings, on=tomorrow) == 1
    assert await lending.send_overdue_reminders(db, settings, on=tomorrow) == 0
    assert await lending.send_overdue_reminders(db, settings, on=tomorrow + timedelta(days=1)) == 1
    async with db.reader() as session:
        payloads = (
            await session.exec(
                select(OutboxEvent.payload).where(OutboxEvent.subject == "records.loan.overdue.v1")
            )
        ).all()
    events = [decode(payload) for payload in payloads]
    assert sorted(e.data["days_overdue"] for e in events) == [1, 2]
    assert {e.data["borrower_id"] for e in events} == {"li"}
    assert events[0].data["item_title"] == "Wiring diagrams binder"


# UTC+14 and UTC-11: at every moment Kiritimati's date is one or two days after Pago Pago's.
ZONES = {"BR01": "Pacific/Kiritimati", "BR02": "Pacific/Pago_Pago"}


@pytest_asyncio.fixture
async def zoned_records(database_url: str, nats_server: NatsServer, tmp_path):
    async with RecordsClient(
        database_url, nats_server, tmp_path / "files", report_branch_time_zones=ZONES
    ) as client:
        yield client


async def out_on_loan(client, branch: str, due_on: date) -> dict:
    """A loan handed out in `branch`, approved due today there, then due `due_on`."""
    clerk = person(f"clerk-{branch}", "records_clerk", branch)
    r = await client.post("/lending/items", headers=clerk, json={"title": f"Manual {branch}"})
    assert r.status_code == 201, r.text
    loan = await ask(client, r.json()["id"], person(f"tech-{branch}", branch=branch))
    approved = await act(client, loan, "approve", who=clerk, due_on=str(today(client, branch)))
    out = (await act(client, approved.json(), "hand-out", who=clerk)).json()
    async with runtime_of(client).db.transaction() as session:
        row = await session.get(Loan, uuid.UUID(out["id"]))
        assert row is not None
        row.due_on = due_on
    return out


@pytest.mark.asyncio
async def test_due_dates_are_the_branchs_local_days(zoned_records):
    records = zoned_records
    kiritimati = datetime.now(ZoneInfo("Pacific/Kiritimati")).date()
    pago_pago = datetime.now(ZoneInfo("Pacific/Pago_Pago")).date()
    shanghai = datetime.now(ZoneInfo("Asia/Shanghai")).date()  # branches without a zone
    assert today(records, "BR01") == kiritimati and today(records, "BR02") == pago_pago
    assert today(records, "BR03") == shanghai

    # Pago Pago's today is a day in the past in Kiritimati.
    for branch, answer in (("BR02", 200), ("BR01", 422)):
        clerk = person(f"clerk-{branch}", "records_clerk", branch)
        r = await records.post("/lending/items", headers=clerk, json={"title": "Service manual"})
        loan = await ask(records, r.json()["id"], person(f"tech-{branch}", branch=branch))
        r = await act(records, loan, "approve", who=clerk, due_on=str(pago_pago))
        assert r.status_code == answer, r.text
        if answer == 422:
            assert_problem(r, 422, "due_on")

    # Due on Kiritimati's yesterday: overdue in Kiritimati, not yet in Pago Pago.
    late = await out_on_loan(records, "BR01", kiritimati - timedelta(days=1))
    not_yet = await out_on_loan(records, "BR02", kiritimati - timedelta(days=1))
    default = await out_on_loan(records, "BR03", shanghai - timedelta(days=1))
    for loan, branch, overdue in ((late, "BR01", True), (not_yet, "BR02", False)):
        clerk = person(f"clerk-{branch}", "records_clerk", branch)
        shown = (await records.get(f"/lending/loans/{loan['id']}", headers=clerk)).json()
        assert shown["overdue"] is overdue
        listed = (await records.get("/lending/overdue", headers=clerk)).json()["items"]
        assert [x["id"] for x in listed] == ([loan["id"]] if overdue else [])

    runtime = runtime_of(records)
    assert await lending.send_overdue_reminders(runtime.db, runtime.settings) == 2
    async with runtime.db.reader() as session:
        payloads = (
            await session.exec(
                select(OutboxEvent.payload).where(OutboxEvent.subject == "records.loan.overdue.v1")
            )
        ).all()
    reminded = {decode(payload).data["loan_id"] for payload in payloads}
    assert reminded == {late["id"], default["id"]}
