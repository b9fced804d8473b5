"""The archive end to end: reception's and workorders' events reach records through a real
nats-server, and the vehicle's file and the customer's data come back over HTTP."""

import httpx
import pytest

from tests.flow import valid_vin
from tests.harness import Stack, auth, eventually
from tests.test_reception_files import png

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def test_vehicle_file_and_customer_export(stack: Stack) -> None:
    advisor, clerk = auth("advisor"), auth("records_clerk")
    reception, records = stack.url("reception"), stack.url("records")
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(
            f"{reception}/customers",
            headers=advisor,
            json={"name": "韩梅梅", "mobile": "13611112222"},
        )
        assert r.status_code == 201, r.text
        customer = r.json()
        r = await client.post(
            f"{reception}/vehicles",
            headers=advisor,
            json={"customer_id": customer["id"], "vin": valid_vin(), "plate": "沪C54321"},
        )
        assert r.status_code == 201, r.text
        vehicle = r.json()
        r = await client.post(
            f"{reception}/intakes",
            headers={**advisor, "Idempotency-Key": "archive-e2e-intake-1"},
            json={"vehicle_id": vehicle["id"], "odometer_km": 18000, "concerns": ["空调不凉"]},
        )
        assert r.status_code == 201, r.text
        intake = r.json()
        # The walk-around: a dent photographed and the customer's signature, stored in
        # records, named on the intake.
        stored = []
        for name, content in (("dent.png", png("archive-e2e-dent")), ("sig.png", png("sig"))):
            r = await client.post(
                f"{records}/files", headers=advisor, files={"file": (name, content)}
            )
            assert r.status_code in (200, 201), r.text
            stored.append(r.json()["id"])
        photo, signature = stored
        r = await client.patch(
            f"{reception}/intakes/{intake['id']}",
            headers={**advisor, "If-Match": f'"{intake["version"]}"'},
            json={
                "damage_marks": [
                    {"position": "door_rear_left", "kind": "dent", "photo_file_id": photo}
                ],
                "signature_file_id": signature,
            },
        )
        assert r.status_code == 200, r.text

        # Workorders opens the draft order on the intake's opening, before the walk-around.
        wanted = ["vehicle.registered", "intake.opened", "repair_order.opened", "intake.inspected"]

        async def vehicle_file() -> dict | None:
            r = await client.get(f"{records}/vehicles/{vehicle['id']}/timeline", headers=clerk)
            if r.status_code == 404:
                return None
            assert r.status_code == 200, r.text
            body = r.json()
            return body if set(wanted) <= {e["kind"] for e in body["entries"]} else None

        file = await eventually(vehicle_file, what="vehicle timeline with the repair order")
        kinds = [e["kind"] for e in file["entries"]]
        assert [k for k in kinds if k in wanted] == wanted
        times = [e["occurred_at"] for e in file["entries"]]
        assert times == sorted(times)
        assert file["vin"] == vehicle["vin"] and file["plate"] == "沪C54321"
        by_kind = {e["kind"]: e for e in file["entries"]}
        assert by_kind["intake.opened"]["reference_id"] == intake["id"]
        assert by_kind["repair_order.opened"]["summary"]["number"].startswith("RO-")
        walkaround = by_kind["intake.inspected"]
        assert walkaround["reference_id"] == intake["id"]
        assert walkaround["repair_order_id"] == by_kind["repair_order.opened"]["repair_order_id"]
        assert walkaround["summary"]["photos"] == [
            {"file_id": photo, "position": "door_rear_left", "kind": "dent"}
        ]
        assert walkaround["summary"]["signature_file_id"] == signature

        async def export() -> dict | None:
            r = await client.get(f"{records}/customers/{customer['id']}/export", headers=clerk)
            if r.status_code == 404:
                return None
            assert r.status_code == 200, r.text
            data = r.json()
            kinds = {e["kind"] for e in data["timeline"]}
            return data if {"customer.registered", *wanted} <= kinds else None

        data = await eventually(export, what="the customer's data export")
        assert data["customer"]["name"] == "韩梅梅"
        assert data["customer"]["mobile"] == "13611112222"
        assert [v["vehicle_id"] for v in data["vehicles"]] == [vehicle["id"]]
        assert {(f["file_id"], f["stored"]) for f in data["files"]} == {
            (photo, True),
            (signature, True),
        }

        r = await client.get(
            f"{records}/customers/{customer['id']}/export", headers=auth("records_clerk", "BR02")
        )
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/problem+json")

        r = await client.post(
            f"{records}/customers/{customer['id']}/erasure",
            headers={**auth("manager"), "Idempotency-Key": "archive-e2e-erasure-1"},
            json={"requested_by": "韩梅梅", "request_channel": "letter"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["files_erased"] == 2  # the walk-around's photo and signature
        r = await client.get(f"{records}/customers/{customer['id']}/export", headers=clerk)
        assert "13611112222" not in r.text and "沪C54321" not in r.text
        assert not any(f["stored"] for f in r.json()["files"])
        assert r.json()["erasures"][0]["request_channel"] == "letter"
