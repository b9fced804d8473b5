"""Estimates over HTTP: revisions, ETag conflicts, canned jobs, consent and the approval
event, extra work from the workshop, and the customer approval link."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import nats
import nats.js.errors
import pytest
import pytest_asyncio
from sqlalchemy import update
from sqlmodel import col, select

from services.reception.config import Settings as ReceptionSettings
from services.reception.main import create_app as create_reception
from services.reception.models import ApprovalClient, ApprovalLink, ConsentRecord, OutboxEvent
from shared.contracts import EstimateApproved, EstimateLine
from shared.contracts.workorders import ExtraWorkFound
from shared.db import Database
from shared.events import decode, encode
from tests.flow import open_intake, register
from tests.harness import NatsServer, auth, eventually
from tests.test_bad_input import assert_problem
from tests.test_reception_files import ReceptionWithRecords, png, upload

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

ADVISOR = auth("advisor")
# What a PUT sends back of a line it keeps.
LINE_FIELDS = {"line_id", "kind", "description", "op_code", "op_group", "job_kind",
               "flat_rate_hours", "labour_rate", "part_number", "quantity", "unit_price",
               "discount", "pay_type"}  # fmt: skip
PROMISED = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0).isoformat()

LINES = [
    {
        "kind": "labour",
        "op_code": "BRK-PAD-F",
        "op_group": "brakes",
        "description": "更换前刹车片",
        "flat_rate_hours": "1.25",
        "labour_rate": "100.02",
    },
    {
        "kind": "part",
        "part_number": "5QD698151",
        "description": "前刹车片",
        "quantity": "1",
        "unit_price": "468.00",
        "discount": "20.00",
    },
    {"kind": "fee", "description": "环保处理费", "unit_price": "15.00", "pay_type": "internal"},
]


class Reception:
    def __init__(self, client: httpx.AsyncClient, db: Database, nats_url: str, signature: str):
        self.client, self.db, self.nats_url = client, db, nats_url
        self.signature = signature  # a file stored in records
        self.records: httpx.AsyncClient | None = None

    async def intake(self, branch: str = "BR01") -> dict[str, Any]:
        _, vehicle = await register(self.client, "", branch=branch)
        return await open_intake(self.client, "", vehicle["id"], branch=branch)

    async def estimate(self, lines: list[dict[str, Any]] = LINES) -> httpx.Response:
        intake = await self.intake()
        r = await self.client.post(
            "/estimates",
            headers=ADVISOR,
            json={"intake_id": intake["id"], "promised_at": PROMISED, "lines": lines},
        )
        assert r.status_code == 201, r.text
        return r

    async def consent(
        self, estimate: httpx.Response, decisions: dict[str, str], **extra: Any
    ) -> httpx.Response:
        body = {
            "decisions": [{"line_id": k, "decision": v} for k, v in decisions.items()],
            "by": "王芳",
            "channel": "in_person",
            "signature_file_id": self.signature,
            **extra,
        }
        return await self.client.post(
            f"/estimates/{estimate.json()['id']}/consents",
            headers={**ADVISOR, "If-Match": estimate.headers["ETag"]},
            json=body,
        )

    async def approvals(self) -> list[EstimateApproved]:
        async with self.db.reader() as session:
            rows = (await session.exec(select(OutboxEvent).order_by(col(OutboxEvent.seq)))).all()
            envelopes = [decode(row.payload) for row in rows]
        return [
            EstimateApproved.from_envelope(e) for e in envelopes if e.type == EstimateApproved.type
        ]


@pytest_asyncio.fixture
async def reception(
    database_url: str, nats_server: NatsServer, tmp_path: Path
) -> AsyncIterator[Reception]:
    """Reception with records beside it: consent signatures are records' files."""
    apps = ReceptionWithRecords(database_url, nats_server, tmp_path / "records")
    apps.reception.state.settings.approval_link_uses_per_minute = 8
    apps.reception.state.settings.approval_link_failures_per_minute = 5
    async with apps as (client, records):
        signature = await upload(records, png("signature"))
        reception = Reception(client, apps.reception.state.runtime.db, nats_server.url, signature)
        reception.records = records
        yield reception


def ids(response: httpx.Response) -> list[str]:
    return [line["line_id"] for line in response.json()["lines"]]


async def test_an_estimate_is_priced_revised_and_old_revisions_stay_readable(
    reception: Reception,
):
    r = await reception.estimate()
    body = r.json()
    assert r.headers["ETag"] == body["etag"]
    assert body["revision"] == 1 and body["status"] == "awaiting_consent"
    assert [line["net"] for line in body["lines"]] == ["125.03", "448.00", "15.00"]
    totals = {t["pay_type"]: t for t in body["totals"]["by_pay_type"]}
    assert totals["customer"] == {
        "pay_type": "customer",
        "net": "573.03",
        "tax": "74.49",
        "total": "647.52",
    }
    assert totals["internal"]["tax"] == "1.95"
    assert body["totals"]["total"] == "664.47"
    assert body["tax_rate"] == "0.13" and body["currency"] == "CNY"

    labour, part_line, fee = body["lines"]
    revised = [
        {**LINES[0], "line_id": labour["line_id"]},
        {**LINES[1], "line_id": part_line["line_id"], "unit_price": "450.00"},
        {"kind": "part", "part_number": "BRK-FLUID", "quantity": "1", "unit_price": "88.00"},
    ]
    r2 = await reception.client.put(
        f"/estimates/{body['id']}",
        headers={**ADVISOR, "If-Match": r.headers["ETag"]},
        json={"promised_at": PROMISED, "lines": revised, "note": "客户要求更换刹车油"},
    )
    assert r2.status_code == 200, r2.text
    assert r2.json()["revision"] == 2 and r2.headers["ETag"] != r.headers["ETag"]
    assert ids(r2)[:2] == [labour["line_id"], part_line["line_id"]]
    assert fee["line_id"] not in ids(r2)

    old = await reception.client.get(f"/estimates/{body['id']}/revisions/1", headers=ADVISOR)
    assert old.status_code == 200 and ids(old) == ids(r)
    assert old.json()["current_revision"] == 2
    by_intake = await reception.client.get(
        f"/intakes/{body['intake_id']}/estimate", headers=auth("cashier")
    )
    assert by_intake.json()["revision"] == 2


async def test_two_tablets_editing_one_estimate_the_second_gets_412(reception: Reception):
    r = await reception.estimate()
    url, tag = f"/estimates/{r.json()['id']}", r.headers["ETag"]
    change = {"promised_at": PROMISED, "lines": LINES[:1]}
    first = await reception.client.put(url, headers={**ADVISOR, "If-Match": tag}, json=change)
    assert first.status_code == 200
    second = await reception.client.put(url, headers={**ADVISOR, "If-Match": tag}, json=change)
    assert_problem(second, 412)
    assert_problem(await reception.client.put(url, headers=ADVISOR, json=change), 428)
    # consent is an edit too: a tablet that has not seen the latest revision is refused
    stale_consent = await reception.consent(r, {ids(first)[0]: "approved"})
    assert_problem(stale_consent, 412)
    current = await reception.client.get(url, headers=ADVISOR)
    assert current.json()["revision"] == 2


async def test_consent_line_by_line_publishes_exactly_the_answered_lines(reception: Reception):
    r = await reception.estimate()
    labour, part_line, fee = ids(r)
    partial = await reception.consent(r, {labour: "approved"})
    assert partial.status_code == 200, partial.text
    assert partial.json()["status"] == "awaiting_consent"
    assert await reception.approvals() == []

    phone = {"channel": "phone", "call_note": "电话确认", "signature_file_id": None}
    done = await reception.consent(partial, {part_line: "declined", fee: "approved"}, **phone)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "answered" and done.json()["approved_at"]
    (event,) = await reception.approvals()
    assert {str(line.line_id) for line in event.approved_lines} == {labour, fee}
    assert [str(line.line_id) for line in event.declined_lines] == [part_line]
    assert {(str(c.line_id), c.decision, c.channel) for c in event.consents} == {
        (labour, "approved", "in_person"),
        (part_line, "declined", "phone"),
        (fee, "approved", "phone"),
    }
    assert event.revision == 1 and event.extra_work_id is None
    assert event.approved_lines[0].net == 125.03 or str(event.approved_lines[0].net) == "125.03"

    ledger = await reception.client.get(
        f"/estimates/{r.json()['id']}/consents", headers=auth("foreman")
    )
    # answers given together share their time; the ledger lists them oldest first
    assert ledger.json()["items"][0]["decision"] == "approved"
    assert sorted(c["decision"] for c in ledger.json()["items"][1:]) == ["approved", "declined"]
    again = await reception.consent(done, {labour: "declined"})
    assert_problem(again, 409)

    # a declined line is kept and offered again later: it needs a fresh answer
    r3 = await reception.client.post(
        f"/estimates/{r.json()['id']}/reoffer",
        headers={**ADVISOR, "If-Match": done.headers["ETag"]},
        json={"line_ids": [part_line]},
    )
    assert r3.status_code == 200, r3.text
    assert [line["answer"] is None for line in r3.json()["lines"]] == [False, True, False]
    assert_problem(
        await reception.client.post(
            f"/estimates/{r.json()['id']}/reoffer",
            headers={**ADVISOR, "If-Match": r3.headers["ETag"]},
            json={"line_ids": [labour]},
        ),
        409,
    )
    await reception.consent(r3, {part_line: "approved"})
    second = (await reception.approvals())[1]
    assert second.revision == 2
    assert {str(line.line_id) for line in second.approved_lines} == {labour, part_line, fee}


async def test_estimates_refuse_bad_input_roles_and_other_branches(reception: Reception):
    intake = await reception.intake()
    post = reception.client.post
    good = {"intake_id": intake["id"], "promised_at": PROMISED, "lines": LINES}
    for lines, field in [
        ([{"kind": "labour", "flat_rate_hours": "1"}], "lines.0"),
        ([{**LINES[1], "quantity": "-1"}], "lines.0.part.quantity"),
        ([{**LINES[1], "unit_price": "abc"}], "lines.0.part.unit_price"),
        ([{**LINES[1], "discount": "500"}], "lines.0"),
        ([{"kind": "tyre"}], "lines.0.kind"),
    ]:
        r = await post("/estimates", headers=ADVISOR, json={**good, "lines": lines})
        body = assert_problem(r, 422)
        assert any(e["field"].startswith(field.split(".part")[0]) for e in body["errors"]), body
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert_problem(
        await post("/estimates", headers=ADVISOR, json={**good, "promised_at": past}),
        422,
        "promised_at",
    )
    assert_problem(
        await post("/estimates", headers=ADVISOR, json={**good, "intake_id": str(uuid.uuid4())}),
        422,
        "intake_id",
    )
    assert_problem(await post("/estimates", headers=auth("cashier"), json=good), 403)
    assert_problem(await post("/estimates", headers=auth("advisor", "BR02"), json=good), 422)
    r = await post("/estimates", headers=ADVISOR, json=good)
    assert r.status_code == 201
    assert_problem(await post("/estimates", headers=ADVISOR, json=good), 409)
    estimate_id = r.json()["id"]
    assert_problem(
        await reception.client.get(f"/estimates/{estimate_id}", headers=auth("advisor", "BR02")),
        404,
    )
    # consent needs its evidence and lines of the current revision
    no_signature = await reception.consent(r, {ids(r)[0]: "approved"}, signature_file_id=None)
    assert_problem(no_signature, 422)
    no_note = await reception.consent(r, {ids(r)[0]: "approved"}, channel="phone")
    assert_problem(no_note, 422)
    by_link = await reception.consent(r, {ids(r)[0]: "approved"}, channel="link")
    assert_problem(by_link, 422)
    unknown = await reception.consent(r, {str(uuid.uuid4()): "approved"})
    assert_problem(unknown, 422, "decisions.0.line_id")
    maybe = await reception.consent(r, {ids(r)[0]: "maybe"})
    assert_problem(maybe, 422)
    async with reception.db.reader() as session:
        assert (await session.exec(select(ConsentRecord))).all() == []


async def test_a_canned_job_adds_labour_and_parts_in_one_call(reception: Reception):
    job = {
        "op_code": "MNT-10K",
        "op_group": "maintenance",
        "description": "一万公里保养",
        "job_kind": "maintenance",
        "flat_rate_hours": "0.80",
        "labour_rate": "380.00",
        "parts": [
            {"part_number": "06L115562B", "quantity": "1", "unit_price": "68.00"},
            {"part_number": "G052195M4", "quantity": "4.5", "unit_price": "85.00"},
        ],
    }
    r = await reception.client.post("/canned-jobs", headers=ADVISOR, json=job)
    assert r.status_code == 201, r.text
    assert_problem(await reception.client.post("/canned-jobs", headers=ADVISOR, json=job), 409)
    listed = await reception.client.get("/canned-jobs", headers=auth("foreman"))
    assert [c["op_code"] for c in listed.json()["items"]] == ["MNT-10K"]

    estimate = await reception.estimate(LINES[:1])
    headers = {**ADVISOR, "If-Match": estimate.headers["ETag"], "Idempotency-Key": "tap-1"}
    url = f"/estimates/{estimate.json()['id']}/canned-jobs"
    added = await reception.client.post(url, headers=headers, json={"op_code": "MNT-10K"})
    assert added.status_code == 200, added.text
    lines = added.json()["lines"]
    assert [line["kind"] for line in lines] == ["labour", "labour", "part", "part"]
    assert [line["net"] for line in lines[1:]] == ["304.00", "68.00", "382.50"]
    assert {line["job_kind"] for line in lines[1:]} == {"maintenance"}
    retry = await reception.client.post(url, headers=headers, json={"op_code": "MNT-10K"})
    assert retry.status_code == 200 and retry.json()["revision"] == 2
    assert retry.headers.get("Idempotent-Replayed") == "true"
    headers = {**ADVISOR, "If-Match": added.headers["ETag"]}
    assert_problem(
        await reception.client.post(url, headers=headers, json={"op_code": "NOPE"}),
        422,
        "op_code",
    )


async def _publish_extra_work(nats_url: str, event: ExtraWorkFound) -> None:
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()

        async def stream_ready() -> bool:
            try:
                return bool(await js.stream_info("WORKORDERS"))
            except nats.js.errors.NotFoundError:
                return False

        # reception creates the producer's stream when its consumer starts
        await eventually(stream_ready, what="the WORKORDERS stream")
        envelope = event.to_envelope(subject=str(event.repair_order_id))
        await js.publish(
            event.type, encode(envelope), headers={"Nats-Msg-Id": envelope.id}, stream="WORKORDERS"
        )
    finally:
        await connection.close()


async def test_extra_work_from_the_workshop_becomes_a_revision_for_consent(
    reception: Reception,
):
    r = await reception.estimate()
    labour, part_line, fee = ids(r)
    r = await reception.consent(r, {labour: "approved", part_line: "declined", fee: "approved"})
    disc, disc_part, extra_work_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    # As the workshop reports it: what to do, without a price.
    event = ExtraWorkFound(
        extra_work_id=extra_work_id,
        repair_order_id=uuid.uuid4(),
        repair_order_number="RO-2026-000001",
        intake_id=r.json()["intake_id"],
        branch="BR01",
        found_by="tech-li",
        findings="后刹车盘磨损 rear discs worn",
        proposed_lines=[
            EstimateLine(
                line_id=disc,
                kind="labour",
                op_code="BRK-DISC-R",
                flat_rate_hours="1.5",
                description="更换后刹车盘",
                extra_work_id=extra_work_id,
            ),
            EstimateLine(
                line_id=disc_part, kind="part", part_number="BD-1", extra_work_id=extra_work_id
            ),
        ],
        found_at=datetime.now(UTC),
    )
    before = await reception.client.get("/estimates/extra-work", headers=ADVISOR)
    assert before.json()["items"] == []  # the advisor's own estimate is no extra work
    await _publish_extra_work(reception.nats_url, event)
    url = f"/estimates/{r.json()['id']}"

    async def revised() -> httpx.Response | None:
        current = await reception.client.get(url, headers=ADVISOR)
        return current if current.json()["revision"] == 2 else None

    current = await eventually(revised, what="the extra-work revision")
    body = current.json()
    # On the advisor's list of extra work waiting for the customer, in this branch only.
    waiting = await reception.client.get("/estimates/extra-work", headers=auth("manager"))
    assert waiting.status_code == 200, waiting.text
    assert [e["id"] for e in waiting.json()["items"]] == [body["id"]]
    assert waiting.json()["items"][0]["revision"] == 2
    other = await reception.client.get("/estimates/extra-work", headers=auth("advisor", "BR02"))
    assert other.json()["items"] == []
    assert body["extra_work_id"] == str(event.extra_work_id)
    assert body["status"] == "awaiting_consent"
    assert ids(current) == [labour, part_line, fee, str(disc), str(disc_part)]
    assert [line["net"] for line in body["lines"][3:]] == ["0.00", "0.00"]
    assert [line["extra_work_id"] for line in body["lines"]] == [None] * 3 + [
        str(extra_work_id)
    ] * 2
    assert [line["answer"] is not None for line in body["lines"]] == [True] * 3 + [False] * 2

    # Unpriced, it cannot be approved (it would be billed at 0.00), nor sent in a link.
    refused = await reception.consent(current, {str(disc): "approved"})
    problem = assert_problem(refused, 409)
    assert problem["line_id"] == str(disc) and "no price" in problem["detail"]
    link = await reception.client.post(f"{url}/approval-links", headers=ADVISOR, json={})
    assert assert_problem(link, 409)["line_id"] == str(disc)
    assert len(await reception.approvals()) == 1  # only the first revision's

    # The advisor prices the work, every line kept by its id: the revision still answers
    # the extra work and its repair order, and each line still names it.
    lines = [
        {k: v for k, v in line.items() if k in LINE_FIELDS} for line in body["lines"][:3]
    ] + [
        {"line_id": str(disc), "kind": "labour", "op_code": "BRK-DISC-R",
         "description": "更换后刹车盘", "flat_rate_hours": "1.5", "labour_rate": "380"},
        {"line_id": str(disc_part), "kind": "part", "part_number": "BD-1",
         "unit_price": "420.00", "discount": "20.00"},
    ]  # fmt: skip
    priced = await reception.client.put(
        url,
        headers={**ADVISOR, "If-Match": current.headers["ETag"]},
        json={"promised_at": PROMISED, "lines": lines},
    )
    assert priced.status_code == 200, priced.text
    body = priced.json()
    assert (body["revision"], body["extra_work_id"], body["repair_order_id"]) == (
        3,
        str(extra_work_id),
        str(event.repair_order_id),
    )
    assert [line["net"] for line in body["lines"][3:]] == ["570.00", "400.00"]
    assert [line["extra_work_id"] for line in body["lines"][3:]] == [str(extra_work_id)] * 2
    assert [line["answer"] is not None for line in body["lines"]] == [True] * 3 + [False] * 2

    done = await reception.consent(priced, {str(disc): "approved", str(disc_part): "declined"})
    assert done.status_code == 200, done.text
    answered = await reception.client.get("/estimates/extra-work", headers=ADVISOR)
    assert answered.json()["items"] == []  # answered: off the list
    _, extra = await reception.approvals()
    assert (extra.revision, extra.extra_work_id) == (3, event.extra_work_id)
    assert extra.repair_order_id == event.repair_order_id
    # Every line of the revision, each naming the extra work it answers (or none).
    approved = {str(line.line_id): line.extra_work_id for line in extra.approved_lines}
    declined = {str(line.line_id): line.extra_work_id for line in extra.declined_lines}
    assert approved == {labour: None, fee: None, str(disc): extra_work_id}
    assert declined == {part_line: None, str(disc_part): extra_work_id}
    assert next(line for line in extra.approved_lines if line.line_id == disc).net == 570


async def test_a_line_answered_twice_in_one_request_is_a_422_naming_it(reception: Reception):
    r = await reception.estimate()
    labour, part_line, _ = ids(r)
    twice = [
        {"line_id": labour, "decision": "approved"},
        {"line_id": part_line, "decision": "approved"},
        {"line_id": labour, "decision": "declined"},
    ]
    url = f"/estimates/{r.json()['id']}/consents"
    answer = await reception.client.post(
        url,
        headers={**ADVISOR, "If-Match": r.headers["ETag"]},
        json={
            "decisions": twice,
            "by": "王芳",
            "channel": "in_person",
            "signature_file_id": reception.signature,
        },
    )
    assert_problem(answer, 422, "decisions.2.line_id")
    # The customer's link: the same.
    link = await reception.client.post(
        f"/estimates/{r.json()['id']}/approval-links", headers=ADVISOR, json={}
    )
    assert link.status_code == 201, link.text
    answer = await reception.client.post(
        f"/approve/{link.json()['token']}", json={"by": "王芳", "decisions": twice}
    )
    assert_problem(answer, 422, "decisions.2.line_id")
    assert (await reception.client.get(url, headers=ADVISOR)).json()["items"] == []
    assert await reception.approvals() == []


async def test_the_customer_answers_through_a_link_that_expires_and_can_be_revoked(
    reception: Reception,
):
    r = await reception.estimate()
    estimate_id = r.json()["id"]
    created = await reception.client.post(
        f"/estimates/{estimate_id}/approval-links", headers=ADVISOR, json={"ttl_minutes": 30}
    )
    assert created.status_code == 201, created.text
    link = created.json()
    token = link["token"]
    assert link["url"].endswith(f"/approve/{token}")
    async with reception.db.reader() as session:
        stored = (await session.exec(select(ApprovalLink))).one()
        assert token not in stored.token_hash

    page = await reception.client.get(f"/approve/{token}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "更换前刹车片" in page.text and "Approve" in page.text and "拒绝" in page.text
    # The promised time as the branch's clock shows it, not an instant in UTC.
    local = datetime.fromisoformat(PROMISED).astimezone(ZoneInfo("Asia/Shanghai"))
    assert f"Promised: {local:%Y-%m-%d %H:%M}" in page.text, page.text
    assert "+00:00" not in page.text
    labour, part_line, fee = ids(r)
    answer = {
        "by": "王芳",
        "decisions": [
            {"line_id": labour, "decision": "approved"},
            {"line_id": part_line, "decision": "declined"},
            {"line_id": fee, "decision": "approved"},
        ],
    }
    assert_problem(await reception.client.post(f"/approve/{token}", json={"by": "x"}), 422)
    done = await reception.client.post(f"/approve/{token}", json=answer)
    assert done.status_code == 200, done.text
    (event,) = await reception.approvals()
    assert {c.channel for c in event.consents} == {"link"}
    assert_problem(await reception.client.post(f"/approve/{token}", json=answer), 409)
    assert_problem(await reception.client.get(f"/approve/{'x' * 43}"), 404)
    assert_problem(await reception.client.get("/approve/short"), 422)


def from_address(reception: Reception, host: str) -> httpx.AsyncClient:
    """A client of the same reception app seen from another address."""
    app = reception.client._transport.app  # type: ignore[attr-defined]
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app, client=(host, 40000)), base_url="http://test"
    )


def assert_limited(response: httpx.Response) -> int:
    body = assert_problem(response, 429)
    assert body["type"].endswith("rate-limited")
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 60 and body["retry_after"] == retry_after
    return retry_after


async def test_wrong_tokens_are_limited_per_address_and_never_lock_the_customer_out(
    reception: Reception,
):
    """Five failures a minute per address (the fixture's setting), eight uses: a guesser
    is stopped at the sixth wrong token, also on the real link; the customer, elsewhere,
    is not; a stranger hammering the real link only uses up their own allowance."""
    estimate_id = (await reception.estimate()).json()["id"]
    token = (
        await reception.client.post(f"/estimates/{estimate_id}/approval-links", headers=ADVISOR)
    ).json()["token"]
    guesser = from_address(reception, "203.0.113.7")
    customer = from_address(reception, "198.51.100.20")
    hammer = from_address(reception, "192.0.2.44")
    async with guesser, customer, hammer:
        for i in range(5):
            assert_problem(await guesser.get(f"/approve/{uuid.uuid4().hex}{i:03d}"), 404)
        assert_limited(await guesser.get(f"/approve/{uuid.uuid4().hex}"))
        assert_limited(await guesser.get(f"/approve/{token}"))  # stopped, whatever it tries
        assert_limited(await guesser.post(f"/approve/{token}", json={"by": "x"}))

        assert (await customer.get(f"/approve/{token}")).status_code == 200
        assert_problem(await customer.get(f"/approve/{uuid.uuid4().hex}"), 404)

        for _ in range(8):
            assert (await hammer.get(f"/approve/{token}")).status_code == 200
        assert_limited(await hammer.get(f"/approve/{token}"))
        assert (await customer.get(f"/approve/{token}")).status_code == 200

        # A new minute for the guesser (its window moved back a minute in the database).
        async with reception.db.transaction() as session:
            await session.exec(
                update(ApprovalClient)
                .where(col(ApprovalClient.client) == "203.0.113.7")
                .values(window_started_at=datetime.now(UTC) - timedelta(seconds=61))
            )
        assert (await guesser.get(f"/approve/{token}")).status_code == 200

    # An IPv6 guesser is counted by its /64, not by each of its addresses.
    for i in range(5):
        async with from_address(reception, f"2001:db8:5:6::{i + 1:x}") as one:
            assert_problem(await one.get(f"/approve/{uuid.uuid4().hex}"), 404)
    async with from_address(reception, "2001:db8:5:6:ffff::9") as another:
        assert_limited(await another.get(f"/approve/{token}"))
    async with from_address(reception, "2001:db8:5:7::1") as neighbour:
        assert (await neighbour.get(f"/approve/{token}")).status_code == 200


async def test_failures_are_counted_across_replicas(
    reception: Reception, database_url: str, nats_server: NatsServer
):
    """Two reception processes' worth of apps on one database: a guesser spreading wrong
    tokens over both is stopped after five in all."""
    second = create_reception(
        ReceptionSettings(
            database_url=database_url,
            nats_url=nats_server.url,
            approval_link_failures_per_minute=5,
        )
    )
    async with second.router.lifespan_context(second):
        replicas = [
            from_address(reception, "203.0.113.9"),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(second, client=("203.0.113.9", 40000)),
                base_url="http://test",
            ),
        ]
        async with replicas[0], replicas[1]:
            for i in range(5):
                r = await replicas[i % 2].get(f"/approve/{uuid.uuid4().hex}")
                assert_problem(r, 404)
            for replica in replicas:
                assert_limited(await replica.get(f"/approve/{uuid.uuid4().hex}"))


async def test_a_revoked_or_expired_link_is_gone(reception: Reception):
    r = await reception.estimate()
    estimate_id = r.json()["id"]
    links = [
        (
            await reception.client.post(f"/estimates/{estimate_id}/approval-links", headers=ADVISOR)
        ).json()
        for _ in range(2)
    ]
    revoked = await reception.client.delete(
        f"/estimates/{estimate_id}/approval-links/{links[0]['id']}", headers=ADVISOR
    )
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert_problem(await reception.client.get(f"/approve/{links[0]['token']}"), 410)
    async with reception.db.transaction() as session:
        await session.execute(
            update(ApprovalLink)
            .where(col(ApprovalLink.id) == uuid.UUID(links[1]["id"]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert_problem(await reception.client.get(f"/approve/{links[1]['token']}"), 410)
    assert_problem(
        await reception.client.post(
            f"/estimates/{estimate_id}/approval-links", headers=auth("technician")
        ),
        403,
    )
    # a link answers the revision it was made for: after a revision it must be renewed
    fresh = (
        await reception.client.post(f"/estimates/{estimate_id}/approval-links", headers=ADVISOR)
    ).json()
    await reception.client.put(
        f"/estimates/{estimate_id}",
        headers={**ADVISOR, "If-Match": r.headers["ETag"]},
        json={"promised_at": PROMISED, "lines": LINES[:1]},
    )
    stale = await reception.client.post(
        f"/approve/{fresh['token']}",
        json={"by": "王芳", "decisions": [{"line_id": ids(r)[0], "decision": "approved"}]},
    )
    assert_problem(stale, 409)


async def test_a_signature_given_in_person_is_kept_by_records(reception: Reception):
    r = await reception.estimate()
    unknown = await reception.consent(
        r, {ids(r)[0]: "approved"}, signature_file_id=str(uuid.uuid4())
    )
    assert_problem(unknown, 422, "signature_file_id")
    assert (
        await reception.client.get(f"/estimates/{r.json()['id']}/consents", headers=ADVISOR)
    ).json()["items"] == []
    answered = await reception.consent(r, {ids(r)[0]: "approved"})
    assert answered.status_code == 200, answered.text
    assert reception.records is not None
    refs = await reception.records.get(f"/files/{reception.signature}/references", headers=ADVISOR)
    assert [(x["owner"], x["owner_id"]) for x in refs.json()["items"]] == [
        ("reception.consent_signature", r.json()["id"])
    ]


async def test_a_retried_consent_gets_its_first_answer_while_records_is_unreachable(
    reception: Reception,
):
    r = await reception.estimate()
    url = f"/estimates/{r.json()['id']}/consents"
    body = {
        "decisions": [{"line_id": ids(r)[0], "decision": "approved"}],
        "by": "王芳",
        "channel": "in_person",
        "signature_file_id": reception.signature,
    }
    headers = {**ADVISOR, "If-Match": r.headers["ETag"], "Idempotency-Key": "consent-1"}
    first = await reception.client.post(url, headers=headers, json=body)
    assert first.status_code == 200, first.text
    # records goes away (a real refused connection): the tablet's retry is answered from
    # the stored first answer, not with a 503
    state = reception.client._transport.app.state  # type: ignore[attr-defined]
    transport, state.records_transport = state.records_transport, None
    state.settings.records_url = "http://127.0.0.1:9"
    try:
        retry = await reception.client.post(url, headers=headers, json=body)
        assert retry.status_code == 200, retry.text
        assert retry.headers.get("Idempotent-Replayed") == "true"
        assert retry.json() == first.json()
        # the same key with another body is still a 422, not a 503
        other = {**body, "by": "李雷"}
        assert_problem(await reception.client.post(url, headers=headers, json=other), 422)
        # a new request does need records: 503, nothing written
        fresh = await reception.client.post(
            url,
            headers={**headers, "Idempotency-Key": "consent-2", "If-Match": first.headers["ETag"]},
            json={**body, "decisions": [{"line_id": ids(r)[1], "decision": "approved"}]},
        )
        assert_problem(fresh, 503)
    finally:
        state.records_transport = transport
    ledger = (await reception.client.get(url, headers=ADVISOR)).json()["items"]
    assert [c["line_id"] for c in ledger] == [ids(r)[0]]
