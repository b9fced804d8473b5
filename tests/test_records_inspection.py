"""Records keeps a completed multi-point inspection as an entry of the vehicle's timeline
(and its history PDF), once however often the event comes, linked to the visit."""

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from shared.contracts import RepairOrderOpened
from shared.contracts.workorders import InspectionCompleted, InspectionItemResult
from tests.harness import NatsServer, auth
from tests.test_records_archive import Story, events_of, feed, with_envelopes
from tests.test_records_files import RecordsClient, runtime_of

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

CLERK = auth("records_clerk")


@pytest_asyncio.fixture
async def records(
    database_url: str, nats_server: NatsServer, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    async with RecordsClient(database_url, nats_server, tmp_path / "files") as client:
        yield client


async def test_a_completed_inspection_is_an_entry_of_the_vehicles_timeline(
    records: httpx.AsyncClient,
) -> None:
    story = Story()
    events = with_envelopes(events_of(story), story)
    opened = next(e for e in events if isinstance(e, RepairOrderOpened))
    photo = uuid.uuid4()
    # Named by the repair order only: the entry finds its car through the visit.
    completed = InspectionCompleted(
        inspection_id=uuid.uuid4(),
        repair_order_id=opened.repair_order_id,
        repair_order_number=opened.number,
        branch=story.branch,
        completed_by="tech-li",
        completed_at=opened.opened_at + timedelta(hours=1),
        counts={"green": 1, "amber": 0, "red": 1},
        items=[
            InspectionItemResult(
                code="tread-fl", area="tyres", label_zh="左前轮胎花纹深度",
                label_en="Front left tyre tread", status="green", value=Decimal("6"), unit="mm",
            ),
            InspectionItemResult(
                code="pads-front", area="brakes", label_zh="前刹车片厚度",
                label_en="Front brake pads", status="red", note="露出金属",
                value=Decimal("1.5"), unit="mm", photo_file_ids=[photo],
            ),
        ],
        extra_work_id=uuid.uuid4(),
    )  # fmt: skip
    [inspection] = with_envelopes([completed], story)
    db = runtime_of(records).db
    await feed(db, [*events, inspection, inspection])  # the event delivered twice

    r = await records.get(f"/vehicles/{story.vehicle_id}/timeline?limit=200", headers=CLERK)
    assert r.status_code == 200, r.text
    entries = [e for e in r.json()["entries"] if e["kind"] == "inspection.completed"]
    assert len(entries) == 1
    [entry] = entries
    assert entry["repair_order_id"] == str(opened.repair_order_id)
    assert entry["reference_id"] == str(completed.inspection_id)
    assert entry["vehicle_id"] == str(story.vehicle_id)
    summary = entry["summary"]
    assert summary["counts"] == {"green": 1, "amber": 0, "red": 1}
    red = next(i for i in summary["items"] if i["status"] == "red")
    assert (red["value"], red["unit"], red["photo_file_ids"]) == ("1.5", "mm", [str(photo)])

    for lang in ("zh-CN", "en"):
        pdf = await records.get(
            f"/vehicles/{story.vehicle_id}/history.pdf?lang={lang}", headers=CLERK
        )
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
