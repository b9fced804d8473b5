"""Intake photos and signatures stored by records: reception asks records to keep every file
an intake names (in process, and with real processes where records' collector runs)."""

import struct
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlmodel import col, select

from services.reception.config import Settings as ReceptionSettings
from services.reception.main import create_app as create_reception
from services.reception.models import OutboxEvent
from services.records.config import Settings as RecordsSettings
from services.records.main import create_app as create_records
from shared.contracts import IntakeInspected
from shared.events import decode
from tests.flow import open_intake, register
from tests.harness import (
    NatsServer,
    Stack,
    auth,
    eventually,
)
from tests.test_bad_input import _client, assert_problem

ADVISOR = auth("advisor")


def png(seed: int | str) -> bytes:
    """A real one-pixel PNG whose colour (and so content and hash) follows `seed`."""
    value = zlib.crc32(str(seed).encode())
    pixel = bytes([0, value & 255, (value >> 8) & 255, (value >> 16) & 255])

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixel))
        + chunk(b"IEND", b"")
    )


async def upload(records: httpx.AsyncClient, content: bytes, branch: str = "BR01") -> str:
    r = await records.post(
        "/files", headers=auth("advisor", branch), files={"file": ("photo.png", content)}
    )
    assert r.status_code in (200, 201), r.text
    return str(r.json()["id"])


class ReceptionWithRecords:
    """Reception and records apps in one process, reception reaching records over ASGI."""

    def __init__(self, database_url: str, nats_server: NatsServer, records_dir: Path):
        self.reception = create_reception(
            ReceptionSettings(database_url=database_url, nats_url=nats_server.url)
        )
        self.records = create_records(
            RecordsSettings(
                database_url=f"sqlite+aiosqlite:///{records_dir / 'records.db'}",
                nats_url=nats_server.url,
                files_dir=str(records_dir / "files"),
            )
        )
        self.reception.state.records_transport = httpx.ASGITransport(self.records)

    async def __aenter__(self) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
        self.lifespans = [
            app.router.lifespan_context(app) for app in (self.records, self.reception)
        ]
        for lifespan in self.lifespans:
            await lifespan.__aenter__()
        self.clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test")
            for app in (self.reception, self.records)
        ]
        return self.clients[0], self.clients[1]

    async def __aexit__(self, *exc: object) -> None:
        for client in self.clients:
            await client.aclose()
        for lifespan in reversed(self.lifespans):
            await lifespan.__aexit__(None, None, None)


@pytest_asyncio.fixture
async def apps(
    database_url: str, nats_server: NatsServer, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    async with ReceptionWithRecords(database_url, nats_server, tmp_path / "records") as pair:
        yield pair


async def _references(records: httpx.AsyncClient, file_id: str) -> list[dict[str, Any]]:
    r = await records.get(f"/files/{file_id}/references", headers=ADVISOR)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


@pytest.mark.asyncio
@pytest.mark.store
async def test_an_intakes_photos_and_signature_are_kept_by_records(
    apps: tuple[httpx.AsyncClient, httpx.AsyncClient],
):
    reception, records = apps
    _, vehicle = await register(reception, "")
    intake = await open_intake(reception, "", vehicle["id"])
    url = f"/intakes/{intake['id']}"
    photo, signature = await upload(records, png("dent")), await upload(records, png("sig"))
    etag = (await reception.get(url, headers=ADVISOR)).headers["ETag"]
    r = await reception.patch(
        url,
        headers={**ADVISOR, "If-Match": etag},
        json={
            "damage_marks": [
                {"position": "door_front_right", "kind": "dent", "photo_file_id": photo}
            ],
            "signature_file_id": signature,
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["damage_marks"][0]["photo_file_id"] == photo
    assert r.json()["signature_file_id"] == signature
    assert [(x["owner"], x["owner_id"]) for x in await _references(records, photo)] == [
        ("reception.intake_photo", intake["id"])
    ]
    assert [(x["owner"], x["owner_id"]) for x in await _references(records, signature)] == [
        ("reception.intake_signature", intake["id"])
    ]

    # a file records does not hold (or holds for another branch) is refused, nothing written
    other_branch = await upload(records, png("elsewhere"), branch="BR02")
    tag = r.headers["ETag"]
    for missing in (str(uuid.uuid4()), other_branch):
        bad = await reception.patch(
            url,
            headers={**ADVISOR, "If-Match": tag},
            json={
                "damage_marks": [
                    {"position": "roof", "kind": "chip", "photo_file_id": photo},
                    {"position": "hood", "kind": "chip", "photo_file_id": missing},
                ]
            },
        )
        assert_problem(bad, 422, "damage_marks[1].photo_file_id")
    unchanged = await reception.get(url, headers=ADVISOR)
    assert unchanged.headers["ETag"] == tag
    assert [m["position"] for m in unchanged.json()["damage_marks"]] == ["door_front_right"]
    # another branch's intake is not found before records is asked anything
    assert_problem(
        await reception.patch(
            url,
            headers={**auth("advisor", "BR02"), "If-Match": tag},
            json={"signature_file_id": photo},
        ),
        404,
    )


@pytest.mark.asyncio
@pytest.mark.store
async def test_records_unreachable_is_a_503_and_nothing_is_written(
    database_url: str, nats_server: NatsServer
):
    async with _client("reception", database_url, nats_server) as reception:
        reception._transport.app.state.settings.records_url = "http://127.0.0.1:9"  # type: ignore[attr-defined]
        _, vehicle = await register(reception, "")
        intake = await open_intake(reception, "", vehicle["id"])
        url = f"/intakes/{intake['id']}"
        etag = (await reception.get(url, headers=ADVISOR)).headers["ETag"]
        r = await reception.patch(
            url,
            headers={**ADVISOR, "If-Match": etag},
            json={"fuel_level_pct": 10, "signature_file_id": str(uuid.uuid4())},
        )
        body = assert_problem(r, 503)
        assert body["type"].endswith("records-unavailable")
        after = await reception.get(url, headers=ADVISOR)
        assert after.headers["ETag"] == etag and after.json()["fuel_level_pct"] is None
        # without files records is not needed
        r = await reception.patch(
            url, headers={**ADVISOR, "If-Match": etag}, json={"fuel_level_pct": 10}
        )
        assert r.status_code == 200, r.text


# --- real processes: records' collector keeps what an intake refers to ---------------


@pytest.fixture(scope="module")
def records_and_reception(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Reception and records as real processes (the harness points reception at records)."""
    root = tmp_path_factory.mktemp("files-stack")
    # Records collects unreferenced files after 4 s, checking every half second.
    stack = Stack(
        root,
        services=("reception", "records"),
        extra_env={
            "RECORDS_FILE_GC_GRACE_SECONDS": "4",
            "RECORDS_FILE_GC_INTERVAL_SECONDS": "0.5",
            "RECORDS_FILES_DIR": str(root / "files"),
        },
    ).start()
    try:
        yield {"records": stack.url("records"), "reception": stack.url("reception")}
    finally:
        stack.stop()


@pytest.mark.asyncio
@pytest.mark.e2e
async def test_records_keeps_the_files_an_intake_refers_to_and_collects_the_rest(
    records_and_reception: dict[str, str],
):
    reception, records = records_and_reception["reception"], records_and_reception["records"]
    async with httpx.AsyncClient(timeout=15) as client:
        _, vehicle = await register(client, reception)
        intake = await open_intake(client, reception, vehicle["id"])
        files = {}
        for name in ("photo", "signature", "stray"):
            r = await client.post(
                f"{records}/files",
                headers=ADVISOR,
                files={"file": (f"{name}.png", png(f"{name}-{uuid.uuid4()}"))},
            )
            assert r.status_code == 201, r.text
            files[name] = r.json()["id"]
        url = f"{reception}/intakes/{intake['id']}"
        etag = (await client.get(url, headers=ADVISOR)).headers["ETag"]
        r = await client.patch(
            url,
            headers={**ADVISOR, "If-Match": etag},
            json={
                "damage_marks": [
                    {"position": "rear_bumper", "kind": "scratch", "photo_file_id": files["photo"]}
                ],
                "valuables_acknowledged": True,
                "signature_file_id": files["signature"],
            },
        )
        assert r.status_code == 200, r.text

        async def stray_collected() -> bool:
            gone = await client.get(f"{records}/files/{files['stray']}", headers=ADVISOR)
            return gone.status_code == 404

        await eventually(stray_collected, timeout=30, what="the unreferenced upload collected")
        for name, owner in (
            ("photo", "reception.intake_photo"),
            ("signature", "reception.intake_signature"),
        ):
            kept = await client.get(f"{records}/files/{files[name]}/content", headers=ADVISOR)
            assert kept.status_code == 200 and kept.content.startswith(b"\x89PNG")
            refs = await client.get(f"{records}/files/{files[name]}/references", headers=ADVISOR)
            refs_of = [(x["owner"], x["owner_id"]) for x in refs.json()["items"]]
            assert refs_of == [(owner, intake["id"])]
        done = await client.post(
            f"{url}/complete", headers={**ADVISOR, "If-Match": r.headers["ETag"]}
        )
        assert done.status_code == 200, done.text


async def _inspections(reception: httpx.AsyncClient, intake_id: str) -> list[dict[str, Any]]:
    """The walk-around events reception wrote for the intake, oldest first."""
    db = reception._transport.app.state.runtime.db  # type: ignore[attr-defined]
    async with db.reader() as session:
        rows = await session.exec(
            select(OutboxEvent.payload)
            .where(OutboxEvent.subject == IntakeInspected.type)
            .order_by(col(OutboxEvent.seq))
        )
        events = [decode(payload) for payload in rows.all()]
    return [e.data for e in events if e.subject == intake_id]


@pytest.mark.asyncio
@pytest.mark.store
async def test_a_changed_walk_around_reaches_the_archive_with_its_photos(
    apps: tuple[httpx.AsyncClient, httpx.AsyncClient],
):
    """Each change of the damage marks, photos or signature sends the whole walk-around
    with the intake's new version; other changes send nothing. Records, over NATS, keeps
    the newest on the vehicle's timeline."""
    reception, records = apps
    _, vehicle = await register(reception, "")
    intake = await open_intake(reception, "", vehicle["id"])
    url = f"/intakes/{intake['id']}"
    dent, scratch, signature = [await upload(records, png(s)) for s in ("dent", "scratch", "sig")]

    async def walkaround(body: dict[str, Any]) -> dict[str, Any]:
        etag = (await reception.get(url, headers=ADVISOR)).headers["ETag"]
        r = await reception.patch(url, headers={**ADVISOR, "If-Match": etag}, json=body)
        assert r.status_code == 200, r.text
        return dict(r.json())

    await walkaround({"fuel_level_pct": 40})
    assert await _inspections(reception, intake["id"]) == []
    marks = [
        {"position": "door_front_right", "kind": "dent", "photo_file_id": dent},
        {"position": "roof", "kind": "chip", "note": "旧伤"},
    ]
    first = await walkaround({"damage_marks": marks})
    await walkaround({"damage_marks": marks, "valuables_acknowledged": True})  # same marks
    marks[1]["photo_file_id"] = scratch
    last = await walkaround({"damage_marks": marks, "signature_file_id": signature})
    sent = await _inspections(reception, intake["id"])
    assert [e["version"] for e in sent] == [first["version"], last["version"]]
    assert first["version"] < last["version"]
    newest = sent[-1]
    assert newest["vehicle_id"] == vehicle["id"] and newest["vin"] == vehicle["vin"]
    assert newest["customer_id"] == intake["customer_id"]
    assert newest["signature_file_id"] == signature and newest["inspected_by"]
    assert [
        (m["position"], m["kind"], m["note"], m["photo_file_id"]) for m in newest["damage_marks"]
    ] == [("door_front_right", "dent", "", dent), ("roof", "chip", "旧伤", scratch)]

    async def archived() -> dict[str, Any] | None:
        r = await records.get(f"/vehicles/{vehicle['id']}/timeline", headers=ADVISOR)
        if r.status_code == 404:
            return None
        entries = {e["kind"]: e for e in r.json()["entries"]}
        entry = entries.get("intake.inspected")
        if entry is None or entry["summary"]["version"] != last["version"]:
            return None
        return dict(entry)

    entry = await eventually(archived, what="the newest walk-around on the vehicle's timeline")
    assert entry["reference_id"] == intake["id"]
    assert entry["summary"]["photos"] == [
        {"file_id": dent, "position": "door_front_right", "kind": "dent"},
        {"file_id": scratch, "position": "roof", "kind": "chip"},
    ]
    assert entry["summary"]["signature_file_id"] == signature
