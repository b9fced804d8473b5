"""Followup tells the others what happened: a visit closed with its outcome, a survey answered,
a comeback recorded, a service reminder sent, each once, through the outbox."""

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from services.followup import service
from services.followup.models import OutboxEvent, ServiceReminder
from shared.contracts.followup import ComebackRecorded, ReminderSent, SurveyAnswered, VisitClosed
from shared.events import Contract, decode
from tests import test_followup_api
from tests.harness import auth
from tests.test_bad_input import assert_problem
from tests.test_followup_api import AGENT, DUE, SERVQUAL, Followup
from tests.test_followup_timers import MONDAY, delivered

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

followup = test_followup_api.followup  # the in-process app with its clock


async def published(followup: Followup, contract: type[Contract]) -> list[Any]:
    async with followup.db.reader() as session:
        query = select(OutboxEvent.payload).order_by(col(OutboxEvent.seq))
        envelopes = [decode(payload) for payload in (await session.exec(query)).all()]
    return [contract.from_envelope(e) for e in envelopes if e.type == contract.type]


async def test_a_survey_publishes_the_answers_and_the_closed_visit(followup: Followup) -> None:
    delivery = await followup.deliver()
    visit = delivery["visit_id"]
    followup.clock.now = DUE
    body = {"overall": 9, "nps": 10, "servqual": SERVQUAL}
    headers = {**AGENT, "Idempotency-Key": "survey-1"}
    for _ in range(2):  # a retry replays the first answer and publishes nothing more
        r = await followup.client.post(f"/visits/{visit}/survey", json=body, headers=headers)
        assert r.status_code == 201, r.text
    [survey] = await published(followup, SurveyAnswered)
    assert str(survey.visit_id) == visit
    assert survey.repair_order_id == delivery["event"].repair_order_id
    assert (survey.overall, survey.nps, survey.answered_at) == (9, 10, DUE)
    answers = {a.dimension: (a.expectation, a.perception) for a in survey.servqual}
    assert answers == {d: (v["expectation"], v["perception"]) for d, v in SERVQUAL.items()}
    [closed] = await published(followup, VisitClosed)
    assert (str(closed.visit_id), closed.outcome, closed.reached) == (visit, "surveyed", True)
    assert closed.repair_order_id == delivery["event"].repair_order_id
    assert closed.closed_at == DUE


async def test_closing_without_a_survey_says_whether_the_customer_was_reached(
    followup: Followup,
) -> None:
    declined = (await followup.deliver())["visit_id"]
    wrong = (await followup.deliver(number="RO-2026-000002"))["visit_id"]
    c = followup.client
    followup.clock.now = DUE
    r = await c.post(
        f"/visits/{declined}/outcome", json={"outcome": "declined_survey"}, headers=AGENT
    )
    assert r.status_code == 200, r.text  # the visit closed: changed, not created
    await c.post(f"/visits/{wrong}/calls", json={"result": "no_answer"}, headers=AGENT)
    r = await c.post(f"/visits/{wrong}/calls", json={"result": "wrong_number"}, headers=AGENT)
    assert r.status_code == 201, r.text
    closed = {str(e.visit_id): e for e in await published(followup, VisitClosed)}
    assert (closed[declined].outcome, closed[declined].reached) == ("declined_survey", True)
    assert (closed[wrong].outcome, closed[wrong].reached, closed[wrong].attempts) == (
        "wrong_number",
        False,
        2,
    )
    # A refused request changes nothing and publishes nothing.
    r = await c.post(f"/visits/{wrong}/outcome", json={"outcome": "declined_survey"}, headers=AGENT)
    assert_problem(r, 409)
    assert len(await published(followup, VisitClosed)) == 2


async def test_a_comeback_is_published_once(followup: Followup) -> None:
    vehicle = uuid.uuid4()
    first = await followup.deliver(vehicle_id=vehicle)
    later = delivered(vehicle_id=vehicle, at=MONDAY + timedelta(days=4), number="RO-2026-000002")
    for _ in range(2):
        async with followup.db.transaction() as session:
            await service.record_delivery(session, later, followup.settings)
    [comeback] = await published(followup, ComebackRecorded)
    assert comeback.repair_order_id == later.repair_order_id
    assert comeback.earlier_repair_order_id == first["event"].repair_order_id
    assert (comeback.op_group, comeback.technician_id) == ("BRAKES", "tech-7")
    assert comeback.delivered_at == later.delivered_at
    assert comeback.earlier_delivered_at == MONDAY


async def test_a_reminder_going_out_is_recorded_and_published(followup: Followup) -> None:
    await followup.deliver()
    async with followup.db.reader() as session:
        [reminder] = (await session.exec(select(ServiceReminder))).all()
        session.expunge(reminder)
    url = f"/reminders/{reminder.id}/sent"
    c = followup.client
    assert_problem(await c.post(url, json={"channel": "pigeon"}, headers=AGENT), 422, "channel")
    assert_problem(await c.post(url, json={}, headers=AGENT), 422, "channel")
    assert_problem(await c.post(url, json={"channel": "sms"}, headers=auth("technician")), 403)
    r = await c.post(url, json={"channel": "sms"}, headers=auth("followup_agent", "BR02"))
    assert_problem(r, 404)
    assert await published(followup, ReminderSent) == []

    followup.clock.now = DUE
    headers = {**AGENT, "Idempotency-Key": "reminder-1"}
    for _ in range(2):
        r = await c.post(url, json={"channel": "sms"}, headers=headers)
        assert r.status_code == 200, r.text
    assert (r.json()["times_sent"], r.json()["sent_channel"]) == (1, "sms")
    assert r.json()["sent_at"] == "2026-12-03T02:00:00Z"
    r = await c.post(url, json={"channel": "wechat"}, headers=AGENT)
    assert r.json()["times_sent"] == 2
    sent = await published(followup, ReminderSent)
    assert [(e.reminder_id, e.channel) for e in sent] == [
        (reminder.id, "sms"),
        (reminder.id, "wechat"),
    ]
    assert sent[0].vehicle_id == reminder.vehicle_id
    assert sent[0].kind == reminder.due_reason
    assert sent[0].due_on is not None and sent[0].sent_at == DUE

    r = await c.post(f"/reminders/{reminder.id}/outcome", json={"outcome": "booked"}, headers=AGENT)
    assert r.status_code == 200
    assert_problem(await c.post(url, json={"channel": "sms"}, headers=AGENT), 409)
    assert len(await published(followup, ReminderSent)) == 2
