"""Steps of the reception flow over HTTP, shared by the end-to-end tests."""

import itertools
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import nats
from nats.js.errors import NotFoundError

from services.reception.vin import check_digit
from shared.calendar import BranchCalendar
from shared.contracts.reception import EstimateApproved
from shared.events import Contract, encode
from tests.harness import Stack, auth, eventually

_serial = itertools.count(1)


def open_days_ahead(days: int, span: int = 8) -> date:
    """A day at least `days` ahead (UTC) from which the default branch (Asia/Shanghai, CN)
    is open `span` days in a row: bookings a test makes a few days out are never refused
    for a holiday, whatever today's date."""
    calendar = BranchCalendar.of("Asia/Shanghai")
    day = datetime.now(UTC).date() + timedelta(days=days)
    while not all(calendar.is_open(day + timedelta(days=i)) for i in range(span)):
        day += timedelta(days=1)
    return day


def valid_vin(prefix: str = "LSVAU2180N", serial: int | None = None) -> str:
    raw = f"{prefix}{(serial if serial is not None else next(_serial)):07d}"
    return raw[:8] + check_digit(raw) + raw[9:]


async def register(
    client: httpx.AsyncClient, reception: str, *, name: str = "测试客户", branch: str = "BR01"
) -> tuple[dict[str, Any], dict[str, Any]]:
    headers = auth("advisor", branch)
    r = await client.post(
        f"{reception}/customers", headers=headers, json={"name": name, "mobile": "13800000000"}
    )
    assert r.status_code == 201, r.text
    customer = r.json()
    r = await client.post(
        f"{reception}/vehicles",
        headers=headers,
        json={"customer_id": customer["id"], "vin": valid_vin()},
    )
    assert r.status_code == 201, r.text
    return customer, r.json()


async def open_intake(
    client: httpx.AsyncClient, reception: str, vehicle_id: str, branch: str = "BR01"
) -> dict[str, Any]:
    r = await client.post(
        f"{reception}/intakes",
        headers=auth("advisor", branch),
        json={"vehicle_id": vehicle_id, "odometer_km": 1000},
    )
    assert r.status_code == 201, r.text
    return r.json()


async def repair_orders_for(
    client: httpx.AsyncClient, workorders: str, intake_ids: set[str]
) -> list[dict[str, Any]]:
    """Every repair order of the branch whose intake is one of `intake_ids`."""
    found, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        r = await client.get(f"{workorders}/repair-orders", params=params, headers=auth("foreman"))
        assert r.status_code == 200, r.text
        body = r.json()
        found += [o for o in body["items"] if o["intake_id"] in intake_ids]
        cursor = body["next_cursor"]
        if not cursor:
            return found


# --- workorders steps, from a consent event to a job with its technician ----------------


async def publish_event(nats_url: str, event: Contract, subject: str, stream: str) -> None:
    """Publish `event` as its producer would, once the consumer's side has made the
    producer's `stream` (a consumer that starts first creates it)."""
    envelope = event.to_envelope(subject=subject)
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()

        async def stream_ready() -> bool:
            try:
                await js.stream_info(stream)
            except NotFoundError:
                return False
            return True

        await eventually(stream_ready, what=f"{stream} stream created")
        await js.publish(envelope.type, encode(envelope), headers={"Nats-Msg-Id": envelope.id})
    finally:
        await nc.close()


async def publish_consent(stack: Stack, event: EstimateApproved) -> None:
    await publish_event(stack.nats.url, event, str(event.estimate_id), "RECEPTION")


async def order_opened(client: httpx.AsyncClient, intake_id: uuid.UUID) -> dict[str, Any]:
    """The repair order workorders opened for the intake (polled until it is there)."""

    async def opened() -> dict[str, Any] | None:
        r = await client.get(
            "/repair-orders", params={"intake_id": str(intake_id)}, headers=auth("foreman")
        )
        items = r.json()["items"]
        return items[0] if items and items[0]["status"] == "open" else None

    return await eventually(opened, what="repair order opened from consent")


async def read(client: httpx.AsyncClient, path: str) -> tuple[dict[str, Any], str]:
    """A resource and its ETag, read as the foreman."""
    r = await client.get(path, headers=auth("foreman"))
    assert r.status_code == 200, r.text
    return r.json(), r.headers["ETag"]


async def assign(client: httpx.AsyncClient, job_id: str, technician: str, bay: str = "B1") -> None:
    _, etag = await read(client, f"/jobs/{job_id}")
    r = await client.put(
        f"/jobs/{job_id}/assignment",
        headers={**auth("foreman"), "If-Match": etag},
        json={"technician_id": technician, "bay": bay},
    )
    assert r.status_code == 200, r.text
