"""The walk-around on an intake: ETag edits, the valuables reminder and signature before
completion, and the intake's state table."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from services.reception.models import IntakeStatus
from services.reception.service import INTAKE_TRANSITIONS
from tests.flow import open_intake, register
from tests.harness import NatsServer, auth
from tests.test_bad_input import assert_problem
from tests.test_reception_files import ReceptionWithRecords, png, upload

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

ADVISOR = auth("advisor")


@pytest_asyncio.fixture
async def apps(
    database_url: str, nats_server: NatsServer, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Reception with records beside it: photos and signatures are records' files."""
    async with ReceptionWithRecords(database_url, nats_server, tmp_path / "records") as pair:
        yield pair


async def test_only_an_open_intake_moves():
    assert INTAKE_TRANSITIONS[IntakeStatus.open] == {IntakeStatus.completed, IntakeStatus.cancelled}
    assert not INTAKE_TRANSITIONS[IntakeStatus.completed]
    assert not INTAKE_TRANSITIONS[IntakeStatus.cancelled]


async def test_the_walk_around_is_recorded_and_completes_only_when_acknowledged_and_signed(
    apps: tuple[httpx.AsyncClient, httpx.AsyncClient],
):
    reception, records = apps
    _, vehicle = await register(reception, "")
    intake = await open_intake(reception, "", vehicle["id"])
    url = f"/intakes/{intake['id']}"
    etag = (await reception.get(url, headers=ADVISOR)).headers["ETag"]
    photo = await upload(records, png("scratch"))
    walk = {
        "fuel_level_pct": 40,
        "checklist": [
            {"item": "tyre_front_left", "state": "attention", "tread_depth_mm": "2.5"},
            {"item": "wipers", "state": "urgent", "note": "雨刮老化"},
        ],
        "damage_marks": [
            {"position": "rear_bumper_left", "kind": "scratch", "photo_file_id": photo}
        ],
    }
    r = await reception.patch(url, headers={**ADVISOR, "If-Match": etag}, json=walk)
    assert r.status_code == 200, r.text
    assert r.json()["checklist"][0]["tread_depth_mm"] == "2.5"
    assert_problem(
        await reception.patch(url, headers={**ADVISOR, "If-Match": etag}, json=walk), 412
    )
    assert_problem(await reception.patch(url, headers=ADVISOR, json=walk), 428)
    tag = r.headers["ETag"]
    for body, field in [
        ({"fuel_level_pct": 101}, "fuel_level_pct"),
        ({"checklist": [{"item": "x", "state": "fine"}]}, "checklist.0.state"),
        ({"damage_marks": [{"position": "x", "kind": "hole"}]}, "damage_marks.0.kind"),
    ]:
        assert_problem(
            await reception.patch(url, headers={**ADVISOR, "If-Match": tag}, json=body), 422, field
        )

    done = await reception.post(f"{url}/complete", headers={**ADVISOR, "If-Match": tag})
    assert_problem(done, 409)
    r = await reception.patch(
        url,
        headers={**ADVISOR, "If-Match": tag},
        json={
            "valuables_acknowledged": True,
            "signature_file_id": await upload(records, png("sig")),
        },
    )
    assert r.status_code == 200 and r.json()["fuel_level_pct"] == 40
    done = await reception.post(
        f"{url}/complete", headers={**ADVISOR, "If-Match": r.headers["ETag"]}
    )
    assert done.status_code == 200 and done.json()["status"] == "completed", done.text
    assert_problem(
        await reception.patch(url, headers={**ADVISOR, "If-Match": done.headers["ETag"]}, json={}),
        409,
    )
    assert_problem(
        await reception.post(f"{url}/cancel", headers={**auth("cashier"), "If-Match": "*"}), 403
    )
