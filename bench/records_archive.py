"""The archive: a vehicle's timeline with 200 visits over HTTP from the records process.

The vehicle's history (registrations, then per visit the intake, its walk-around with
two photos, the approved estimate, the repair order, two clock segments and the QC of its
job, the invoice, its delivery with jobs and the customer's survey: 10 entries a visit) is
seeded straight into records' database through its own event handlers, not over NATS;
then `--n` timed requests, one at a time, of the first page (100 entries, the default), a
full page of 200, and the whole history followed through its cursors, with the CPU time
the records process spent per request; and the printed history (`history.pdf`, every
entry) a few times, for its cost. Target: p99 ≤ 30 ms for the pages.

Then what a car coming in costs the archive once it holds a dealer's history: `--archive`
entries (default 200,000, other cars' visits, inserted in bulk) are put into the same
branch, and `--intakes` (200) new visits' first four events (the intake, its walk-around,
the approved estimate and the repair order, whose handlers find each other's entries) go
through the handlers in this process, one transaction per event as the consumer runs them;
it reports the time and CPU per visit.

`.venv/bin/python -m bench.records_archive [--visits 200] [--n 300] [--archive 200000]
[--intakes 200]`
"""

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import insert

from bench.common import (
    cpu_seconds,
    percentile,
    pid_of,
    running_stack,
    table,
    valid_vin,
    wait_ready,
)
from services.records import handlers
from services.records.models import TimelineEntry
from shared.contracts import (
    CustomerRegistered,
    CustomerSnapshot,
    DamageMarkRef,
    DeliveredJob,
    EstimateApproved,
    EstimateLine,
    IntakeInspected,
    IntakeOpened,
    RepairOrderDelivered,
    RepairOrderOpened,
    VehicleRegistered,
    VehicleSnapshot,
)
from shared.contracts.followup import SurveyAnswered
from shared.contracts.workorders import (
    InvoiceLine,
    JobClocked,
    PayTypeTotal,
    QcRecorded,
    RepairOrderSettled,
)
from shared.db import Database
from shared.events import Contract
from tests.harness import auth, backend

BRANCH = "BR01"
# The archive's handlers (reports and webhooks subscribe to some of the same events).
ROUTES = {
    h.contract.type: h
    for h in handlers.subscriber.handlers
    if h.durable.startswith("records__archive_")
}


def visit(
    n: int, at: datetime, customer: CustomerSnapshot, vehicle: VehicleSnapshot
) -> list[Contract]:
    intake_id, order_id, estimate_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    number = f"RO-{at.year}-{n:06d}"
    line = EstimateLine(
        line_id=uuid.uuid4(),
        kind="labour",
        description="常规保养",
        op_code="MNT10",
        flat_rate_hours=Decimal("1.0"),
        labour_rate=Decimal("300"),
        net=Decimal("300"),
    )
    odometer = 5000 * (n + 1)
    common: dict[str, Any] = {"branch": BRANCH, "customer_id": customer.id}
    job_id, technician = uuid.uuid4(), f"tech-{n % 7}"
    job: dict[str, Any] = {
        "repair_order_id": order_id,
        "number": number,
        "branch": BRANCH,
        "job_id": job_id,
        "op_code": "MNT10",
        "technician_id": technician,
    }
    return [
        IntakeOpened(intake_id=intake_id, branch=BRANCH, opened_at=at, advisor="adv-zhao",
                     customer=customer, vehicle=vehicle, odometer_km=odometer,
                     concerns=["保养"]),
        IntakeInspected(intake_id=intake_id, branch=BRANCH, version=2,
                        customer_id=customer.id, vehicle_id=vehicle.id, vin=vehicle.vin,
                        damage_marks=[DamageMarkRef(position="rear_bumper_left", kind="scratch",
                                                    photo_file_id=uuid.uuid4()),
                                      DamageMarkRef(position="roof", kind="chip",
                                                    photo_file_id=uuid.uuid4())],
                        signature_file_id=uuid.uuid4(), inspected_by="adv-zhao",
                        inspected_at=at + timedelta(minutes=5)),
        EstimateApproved(estimate_id=estimate_id, revision=1, intake_id=intake_id,
                         customer_name=customer.name, vehicle_id=vehicle.id, vin=vehicle.vin,
                         plate=vehicle.plate, advisor="adv-zhao", odometer_km=odometer,
                         promised_at=at + timedelta(hours=4), approved_lines=[line],
                         approved_at=at + timedelta(minutes=15), **common),
        RepairOrderOpened(repair_order_id=order_id, number=number, intake_id=intake_id,
                          vehicle_id=vehicle.id, vin=vehicle.vin, status="open",
                          opened_at=at + timedelta(minutes=16), **common),
        JobClocked(clock_id=uuid.uuid4(), flat_rate_hours=Decimal("1.0"),
                   started_at=at + timedelta(minutes=30), ended_at=at + timedelta(hours=1),
                   hours=Decimal("0.5"), reason="waiting_parts", **job),
        JobClocked(clock_id=uuid.uuid4(), flat_rate_hours=Decimal("1.0"),
                   started_at=at + timedelta(hours=2), ended_at=at + timedelta(hours=2, minutes=30),
                   hours=Decimal("0.5"), **job),
        QcRecorded(qc_id=uuid.uuid4(), passed=True, inspected_by="qc-wu",
                   inspected_at=at + timedelta(hours=2, minutes=40), **job),
        RepairOrderSettled(repair_order_id=order_id, number=number,
                           invoice_number=f"INV-{at.year}-{n:06d}", vehicle_id=vehicle.id,
                           vin=vehicle.vin,
                           lines=[InvoiceLine(line_id=line.line_id, kind="labour",
                                              net=Decimal("300"))],
                           totals=[PayTypeTotal(pay_type="customer", net=Decimal("300"),
                                                tax=Decimal("39"), gross=Decimal("339"))],
                           net_total=Decimal("300"), tax_total=Decimal("39"),
                           gross_total=Decimal("339"), customer_due=Decimal("339"),
                           settled_by="cashier-qian", settled_at=at + timedelta(hours=3),
                           **common),
        RepairOrderDelivered(repair_order_id=order_id, number=number, vehicle_id=vehicle.id,
                             vin=vehicle.vin, plate=vehicle.plate, advisor="adv-zhao",
                             odometer_km=odometer, delivered_at=at + timedelta(hours=3, minutes=5),
                             promised_at=at + timedelta(hours=4),
                             jobs=[DeliveredJob(job_id=uuid.uuid4(), op_code="MNT10",
                                                op_group="maintenance", kind="maintenance",
                                                technician_id=technician,
                                                flat_rate_hours=Decimal("1.0"))],
                             **common),
        SurveyAnswered(survey_id=uuid.uuid4(), visit_id=uuid.uuid4(), repair_order_id=order_id,
                       overall=9, nps=10, answered_at=at + timedelta(days=3), **common),
    ]  # fmt: skip


async def seed(database_url: str, visits: int) -> tuple[str, int]:
    """One customer's car with `visits` visits; returns the vehicle id and the entry count."""
    customer = CustomerSnapshot(id=uuid.uuid4(), name="压测客户", mobile="13900000000")
    vehicle = VehicleSnapshot(
        id=uuid.uuid4(), vin=valid_vin(4_200_000), plate="沪B00001", make="SAIC Volkswagen"
    )
    start = datetime(2020, 1, 1, 1, 0, tzinfo=UTC)
    batches: list[list[Contract]] = [
        [
            CustomerRegistered(branch=BRANCH, customer=customer, registered_at=start),
            VehicleRegistered(
                branch=BRANCH, customer_id=customer.id, vehicle=vehicle, registered_at=start
            ),
        ]
    ]
    for n in range(visits):
        batches.append(visit(n, start + timedelta(days=7 * n + 1), customer, vehicle))
    db = Database(database_url)
    count = 0
    try:
        for batch in batches:
            async with db.transaction() as session:
                for event in batch:
                    event = type(event).from_envelope(event.to_envelope(subject=str(vehicle.id)))
                    await ROUTES[event.type].func(event, session)
                    count += 1
    finally:
        await db.dispose()
    return str(vehicle.id), count


async def fill_archive(database_url: str, entries: int) -> None:
    """`entries` timeline entries of other cars in the branch, in bulk."""
    kinds = ["intake.opened", "estimate.approved", "repair_order.opened", "job.clocked"]
    start = datetime(2018, 1, 1, tzinfo=UTC)
    table = TimelineEntry.__table__  # type: ignore[attr-defined]
    db = Database(database_url)
    try:
        for first in range(0, entries, 5_000):
            rows = []
            for i in range(first, min(first + 5_000, entries)):
                visit_of = uuid.uuid4()
                rows.append(
                    {
                        "id": uuid.uuid4(),
                        "event_id": str(uuid.uuid4()),
                        "kind": kinds[i % len(kinds)],
                        "branch": BRANCH,
                        "occurred_at": start + timedelta(minutes=i),
                        "reference_id": visit_of,
                        "vehicle_id": uuid.uuid4(),
                        "customer_id": uuid.uuid4(),
                        "summary": {"intake_id": str(uuid.uuid4()), "number": f"RO-{i}"},
                    }
                )
            async with db.transaction() as session:
                await session.execute(insert(table), rows)
    finally:
        await db.dispose()


async def archive_intakes(database_url: str, intakes: int) -> list[list[Any]]:
    """Each new visit's first four events through the handlers; time and CPU per visit."""
    customer = CustomerSnapshot(id=uuid.uuid4(), name="新客户", mobile="13900000001")
    vehicle = VehicleSnapshot(
        id=uuid.uuid4(), vin=valid_vin(4_300_000), plate="沪B00002", make="SAIC Volkswagen"
    )
    start = datetime(2026, 1, 1, 1, 0, tzinfo=UTC)
    db = Database(database_url)
    walls: list[float] = []
    cpu = 0.0
    try:
        for n in range(intakes):
            events = visit(n, start + timedelta(days=n), customer, vehicle)[:4]
            cpu_before, started = time.process_time(), time.perf_counter()
            for event in events:
                event = type(event).from_envelope(event.to_envelope(subject=str(vehicle.id)))
                async with db.transaction() as session:
                    await ROUTES[event.type].func(event, session)
            walls.append((time.perf_counter() - started) * 1000)
            cpu += time.process_time() - cpu_before
    finally:
        await db.dispose()
    return [
        [
            "intake, walk-around, estimate, repair order",
            intakes,
            *(round(percentile(walls, q), 2) for q in (50, 90, 99)),
            round(max(walls), 2),
            round(cpu * 1000 / intakes, 2),
        ]
    ]


async def measure(base: str, vehicle_id: str, n: int, pid: int) -> list[list[Any]]:
    url = f"{base}/vehicles/{vehicle_id}/timeline"
    headers = auth("records_clerk")
    rows: list[list[Any]] = []
    async with httpx.AsyncClient(timeout=10, headers=headers) as client:

        async def first_page() -> int:
            r = await client.get(url)
            r.raise_for_status()
            return len(r.json()["entries"])

        async def full_page() -> int:
            r = await client.get(url, params={"limit": 200})
            r.raise_for_status()
            return len(r.json()["entries"])

        async def whole_history() -> int:
            total, cursor = 0, None
            while True:
                params: dict[str, Any] = {"limit": 200}
                if cursor:
                    params["cursor"] = cursor
                r = await client.get(url, params=params)
                r.raise_for_status()
                body = r.json()
                total += len(body["entries"])
                cursor = body["next_cursor"]
                if not cursor:
                    return total

        async def history_pdf() -> int:
            r = await client.get(
                url.replace("/timeline", "/history.pdf"), params={"lang": "zh-CN"}, timeout=120
            )
            r.raise_for_status()
            return entry_count

        entry_count = await whole_history()
        for name, probe, runs in (
            ("first page (100 entries)", first_page, n),
            ("full page (200 entries)", full_page, n),
            ("whole history (all pages of 200)", whole_history, max(n // 5, 20)),
            ("history PDF, zh-CN (every entry)", history_pdf, 3),
        ):
            for _ in range(10 if runs > 3 else 1):
                await probe()
            times, entries = [], 0
            cpu_before = cpu_seconds(pid)
            for _ in range(runs):
                started = time.perf_counter()
                entries = await probe()
                times.append((time.perf_counter() - started) * 1000)
            rows.append(
                [
                    name,
                    entries,
                    runs,
                    percentile(times, 50),
                    percentile(times, 90),
                    percentile(times, 99),
                    max(times),
                    (cpu_seconds(pid) - cpu_before) * 1000 / runs,
                ]
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--visits", type=int, default=200)
    parser.add_argument("--n", type=int, default=300, help="timed requests per query")
    parser.add_argument("--archive", type=int, default=200_000, help="entries already archived")
    parser.add_argument("--intakes", type=int, default=200, help="new visits archived")
    args = parser.parse_args()
    with running_stack(services=("records",)) as stack:
        wait_ready(stack)
        started = time.perf_counter()
        vehicle_id, events = asyncio.run(seed(stack.database_urls["records"], args.visits))
        seeded_in = time.perf_counter() - started
        rows = asyncio.run(
            measure(stack.url("records"), vehicle_id, args.n, pid_of(stack, "records"))
        )
        started = time.perf_counter()
        asyncio.run(fill_archive(stack.database_urls["records"], args.archive))
        filled_in = time.perf_counter() - started
        intake_rows = asyncio.run(archive_intakes(stack.database_urls["records"], args.intakes))
    print(
        f"\nVehicle timeline, {args.visits} visits ({events} events through the handlers in "
        f"{seeded_in:.1f} s), records on {backend()}, one request at a time:\n"
    )
    headers = ["query", "entries", "requests", "p50 ms", "p90 ms", "p99 ms", "max ms"]
    print(table([*headers, "records CPU ms/request"], rows))
    print(
        "\nTarget: p99 ≤ 30 ms for the pages. The CPU the records process spent per request "
        "does not depend on what else the machine is running; the latencies do."
    )
    print(
        f"\nA new visit archived, with {args.archive:,} more entries in the branch (inserted "
        f"in {filled_in:.1f} s), {args.intakes} visits one after another, in this process:\n"
    )
    print(
        table(
            ["events", "visits", "p50 ms", "p90 ms", "p99 ms", "max ms", "CPU ms/visit"],
            intake_rows,
        )
    )


if __name__ == "__main__":
    main()
