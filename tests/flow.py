"""Steps of the reception flow over HTTP, shared by the end-to-end tests."""

import itertools
from typing import Any

import httpx

from services.reception.vin import check_digit
from tests.harness import auth

_serial = itertools.count(1)


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
