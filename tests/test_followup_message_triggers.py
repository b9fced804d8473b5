"""What each event queues for the customer, at a set clock: the car-ready SMS at once even
in quiet hours, a delay notice only for a later promise and outside quiet hours, an
appointment reminder the day before inside business hours (moved with a reschedule,
dropped with a cancellation), and nothing to a customer who refused contact or opted out."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from sqlmodel import col, select

from services.followup import message_triggers, messages
from services.followup.config import Settings
from services.followup.main import SPEC
from services.followup.models import Contact, CustomerMessage
from shared.contracts.reception import AppointmentBooked, AppointmentClosed
from shared.contracts.workorders import RepairOrderPromiseChanged, RepairOrderReady
from shared.db import Database
from shared.migrations import upgrade

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Tuesday 8 December 2026, a working day.
EVENING = datetime(2026, 12, 8, 22, 30, tzinfo=SHANGHAI)
MORNING = datetime(2026, 12, 8, 10, 0, tzinfo=SHANGHAI)


@pytest_asyncio.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(
        database_url,
        info={"outbox_model": SPEC.outbox_model, "idempotency_model": SPEC.idempotency_model},
    )
    await upgrade(database, SPEC.migrations)
    yield database
    await database.dispose()


def at(moment: datetime) -> Settings:
    return Settings(clock=lambda: moment.astimezone(UTC))


async def contact(
    db: Database, mobile: str = "+86 138-0013-8000", consent: bool = True
) -> uuid.UUID:
    customer_id = uuid.uuid4()
    async with db.transaction() as session:
        session.add(
            Contact(
                customer_id=customer_id,
                branch="BR01",
                name="李女士",
                mobile=mobile,
                preferred_channel="sms",
                language="zh-CN",
                contact_consent=consent,
                as_of=MORNING,
                updated_at=MORNING,
            )
        )
    return customer_id


async def queued(db: Database, customer_id: uuid.UUID) -> list[CustomerMessage]:
    async with db.reader() as session:
        rows = list(
            (
                await session.exec(
                    select(CustomerMessage)
                    .where(CustomerMessage.customer_id == customer_id)
                    .order_by(col(CustomerMessage.created_at), col(CustomerMessage.cause))
                )
            ).all()
        )
        session.expunge_all()
    return rows


def ready(customer_id: uuid.UUID) -> RepairOrderReady:
    return RepairOrderReady(
        repair_order_id=uuid.uuid4(),
        number="RO-2026-000300",
        branch="BR01",
        customer_id=customer_id,
        vehicle_id=uuid.uuid4(),
        plate="沪B67890",
        advisor="advisor-1",
        amount_due=Decimal("356"),
        ready_at=EVENING,
    )


async def test_the_car_ready_sms_goes_at_once_even_in_quiet_hours(db: Database) -> None:
    customer_id = await contact(db)
    event = ready(customer_id)
    async with db.transaction() as session:
        assert await message_triggers.car_ready(session, event, at(EVENING))
        assert not await message_triggers.car_ready(session, event, at(EVENING))
    [row] = await queued(db, customer_id)
    assert (row.channel, row.recipient, row.template, row.purpose) == (
        "sms",
        "13800138000",
        "car_ready",
        "service",
    )
    assert row.params == {
        "number": "RO-2026-000300",
        "plate": "沪B67890",
        "amount": "356.00",
        "currency": "CNY",
    }
    assert row.next_attempt_at == EVENING.astimezone(UTC)


async def test_a_later_promise_is_told_after_quiet_hours_and_an_earlier_one_not(
    db: Database,
) -> None:
    customer_id = await contact(db)
    order_id = uuid.uuid4()

    def promise(previous: datetime, new: datetime) -> RepairOrderPromiseChanged:
        return RepairOrderPromiseChanged(
            repair_order_id=order_id,
            number="RO-2026-000301",
            branch="BR01",
            customer_id=customer_id,
            plate="沪B67890",
            advisor="advisor-1",
            previous_promised_at=previous,
            promised_at=new,
            changed_by="advisor-1",
            changed_at=EVENING,
        )

    later = EVENING + timedelta(hours=12)
    async with db.transaction() as session:
        assert not await message_triggers.promise_changed(
            session, promise(EVENING, EVENING - timedelta(hours=1)), at(EVENING)
        )
        assert await message_triggers.promise_changed(session, promise(EVENING, later), at(EVENING))
    [row] = await queued(db, customer_id)
    assert row.template == "promise_changed"
    assert row.params["promised"] == "12-09 10:30"
    # Asked at 22:30: held until quiet hours end at 08:00 the next morning.
    assert row.next_attempt_at == datetime(2026, 12, 9, 8, 0, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.mark.parametrize(
    ("slot", "reminded"),
    [
        ((7, 30), (9, 0)),  # before opening: at opening the day before
        ((14, 15), (14, 15)),  # its own clock time the day before
        ((17, 45), (17, 0)),  # at closing or later: an hour before closing
    ],
)
async def test_an_appointment_is_reminded_the_day_before_in_business_hours(
    db: Database, slot: tuple[int, int], reminded: tuple[int, int]
) -> None:
    customer_id = await contact(db)
    scheduled = datetime(2026, 12, 10, *slot, tzinfo=SHANGHAI)
    event = AppointmentBooked(
        appointment_id=uuid.uuid4(),
        branch="BR01",
        customer_id=customer_id,
        scheduled_for=scheduled,
        booked_by="advisor-1",
        booked_at=MORNING,
    )
    async with db.transaction() as session:
        assert await message_triggers.appointment_booked(session, event, at(MORNING))
    [row] = await queued(db, customer_id)
    expected = datetime(2026, 12, 9, *reminded, tzinfo=SHANGHAI)
    assert row.next_attempt_at == expected.astimezone(UTC)
    assert row.params == {"time": scheduled.strftime("%m-%d %H:%M")}


async def test_a_rescheduled_appointment_is_reminded_of_the_new_slot_and_a_cancelled_one_not(
    db: Database,
) -> None:
    customer_id = await contact(db)
    appointment_id = uuid.uuid4()
    first = datetime(2026, 12, 10, 10, 0, tzinfo=SHANGHAI)
    second = datetime(2026, 12, 11, 15, 0, tzinfo=SHANGHAI)

    def booked(slot: datetime) -> AppointmentBooked:
        return AppointmentBooked(
            appointment_id=appointment_id,
            branch="BR01",
            customer_id=customer_id,
            scheduled_for=slot,
            booked_by="advisor-1",
            booked_at=MORNING,
        )

    async with db.transaction() as session:
        await message_triggers.appointment_booked(session, booked(first), at(MORNING))
        await message_triggers.appointment_booked(session, booked(second), at(MORNING))
    rows = await queued(db, customer_id)
    assert sorted((r.params["time"], r.status) for r in rows) == [
        ("12-10 10:00", "cancelled"),
        ("12-11 15:00", "pending"),
    ]
    closed = AppointmentClosed(
        appointment_id=appointment_id,
        branch="BR01",
        customer_id=customer_id,
        scheduled_for=second,
        outcome="cancelled",
        closed_by="advisor-1",
        closed_at=MORNING,
    )
    async with db.transaction() as session:
        assert await message_triggers.appointment_closed(session, closed, at(MORNING)) == 1
    assert {r.status for r in await queued(db, customer_id)} == {"cancelled"}


async def test_nothing_for_a_customer_who_refused_contact_or_opted_out(db: Database) -> None:
    refusing = await contact(db, "13800138011", consent=False)
    opted = await contact(db, "13800138012")
    async with db.transaction() as session:
        await messages.record_opt_out(
            session, channel="sms", recipient="13800138012", source="test", now=MORNING
        )
        assert not await message_triggers.car_ready(session, ready(refusing), at(MORNING))
        assert not await message_triggers.car_ready(session, ready(opted), at(MORNING))
        assert not await message_triggers.car_ready(session, ready(uuid.uuid4()), at(MORNING))
    assert await queued(db, refusing) == await queued(db, opted) == []
