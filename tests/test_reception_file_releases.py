"""Photos and signatures removed or replaced on an intake: reception releases records'
reference (at once, or later by its background job when records was unreachable), and a
file shown again is kept again. Reception and a real records app in one process."""

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlmodel import select

from services.reception import file_releases
from services.reception.main import SPEC
from services.reception.models import FileRelease
from shared.db import Database
from shared.migrations import upgrade
from tests.flow import open_intake, register
from tests.harness import NatsServer, Stack, auth, eventually, second_starts_before_first_commits
from tests.test_reception_files import ReceptionWithRecords, png, upload

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

ADVISOR = auth("advisor")


class Apps:
    def __init__(self, pair: ReceptionWithRecords, reception: httpx.AsyncClient, records: Any):
        self.pair, self.reception, self.records = pair, reception, records
        self.state = pair.reception.state
        self._transport = self.state.records_transport

    def records_down(self) -> None:
        """Records unreachable for real: a refused connection."""
        self.state.records_transport = None
        self.state.settings.records_url = "http://127.0.0.1:9"

    def records_up(self) -> None:
        self.state.records_transport = self._transport

    async def owners(self, file_id: str) -> list[tuple[str, str]]:
        r = await self.records.get(f"/files/{file_id}/references", headers=ADVISOR)
        assert r.status_code == 200, r.text
        return [(x["owner"], x["owner_id"]) for x in r.json()["items"]]

    async def pending(self) -> list[dict[str, Any]]:
        async with self.state.runtime.db.reader() as session:
            rows = (await session.exec(select(FileRelease))).all()
            return [row.model_dump(mode="json") for row in rows]

    async def walkaround(self, intake_id: str, body: dict[str, Any]) -> httpx.Response:
        url = f"/intakes/{intake_id}"
        etag = (await self.reception.get(url, headers=ADVISOR)).headers["ETag"]
        return await self.reception.patch(url, headers={**ADVISOR, "If-Match": etag}, json=body)


@pytest_asyncio.fixture
async def apps(database_url: str, nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[Apps]:
    pair = ReceptionWithRecords(database_url, nats_server, tmp_path / "records")
    pair.reception.state.settings.file_release_interval_seconds = 0.1
    async with pair as (reception, records):
        yield Apps(pair, reception, records)


def mark(photo: str, position: str = "door_front_right") -> dict[str, str]:
    return {"position": position, "kind": "dent", "photo_file_id": photo}


async def test_a_replaced_photo_and_signature_are_released_at_once(apps: Apps):
    _, vehicle = await register(apps.reception, "")
    intake = (await open_intake(apps.reception, "", vehicle["id"]))["id"]
    old_photo, kept_photo, new_photo = [await upload(apps.records, png(s)) for s in "abc"]
    old_sig, new_sig = await upload(apps.records, png("s1")), await upload(apps.records, png("s2"))
    r = await apps.walkaround(
        intake,
        {
            "damage_marks": [mark(old_photo), mark(kept_photo, "bonnet")],
            "signature_file_id": old_sig,
        },
    )
    assert r.status_code == 200, r.text
    r = await apps.walkaround(
        intake,
        {
            "damage_marks": [mark(kept_photo, "bonnet"), mark(new_photo, "roof")],
            "signature_file_id": new_sig,
        },
    )
    assert r.status_code == 200, r.text
    photo, signature = ("reception.intake_photo", intake), ("reception.intake_signature", intake)
    assert await apps.owners(old_photo) == [] and await apps.owners(old_sig) == []
    assert await apps.owners(kept_photo) == [photo] and await apps.owners(new_photo) == [photo]
    assert await apps.owners(new_sig) == [signature]
    assert await apps.pending() == []
    # a change that touches no file releases nothing
    r = await apps.walkaround(intake, {"fuel_level_pct": 30})
    assert r.status_code == 200, r.text
    assert await apps.owners(kept_photo) == [photo] and await apps.owners(new_photo) == [photo]


async def test_a_release_records_did_not_take_is_retried_until_it_is_done(apps: Apps):
    _, vehicle = await register(apps.reception, "")
    intake = (await open_intake(apps.reception, "", vehicle["id"]))["id"]
    dent, scratch = await upload(apps.records, png("dent")), await upload(apps.records, png("x"))
    r = await apps.walkaround(intake, {"damage_marks": [mark(dent), mark(scratch, "roof")]})
    assert r.status_code == 200, r.text

    apps.records_down()
    try:
        # removing a photo needs nothing from records: the change is saved, the release waits
        r = await apps.walkaround(intake, {"damage_marks": [mark(scratch, "roof")]})
        assert r.status_code == 200, r.text
        assert [m["photo_file_id"] for m in r.json()["damage_marks"]] == [scratch]

        async def tried() -> bool:
            rows = await apps.pending()
            return len(rows) == 1 and rows[0]["attempts"] >= 1

        await eventually(tried, what="a failed attempt of the release")
        [row] = await apps.pending()
        assert (row["file_id"], row["owner"], row["owner_id"]) == (
            dent,
            "reception.intake_photo",
            intake,
        )
        assert row["last_error"] and "did not answer" in row["last_error"]
    finally:
        apps.records_up()
    assert await apps.owners(dent) == [("reception.intake_photo", intake)]

    async def released() -> bool:
        return await apps.pending() == [] and await apps.owners(dent) == []

    await eventually(released, what="the background job's release", timeout=30)
    assert await apps.owners(scratch) == [("reception.intake_photo", intake)]


async def test_a_photo_shown_again_keeps_its_reference(apps: Apps):
    _, vehicle = await register(apps.reception, "")
    intake = (await open_intake(apps.reception, "", vehicle["id"]))["id"]
    dent = await upload(apps.records, png("dent"))
    assert (await apps.walkaround(intake, {"damage_marks": [mark(dent)]})).status_code == 200
    apps.records_down()
    try:
        assert (await apps.walkaround(intake, {"damage_marks": []})).status_code == 200
        assert len(await apps.pending()) == 1
    finally:
        apps.records_up()
    # the advisor puts the photo back before the release ran: the release is cancelled
    r = await apps.walkaround(intake, {"damage_marks": [mark(dent, "boot")]})
    assert r.status_code == 200, r.text
    assert await apps.pending() == []
    assert await apps.owners(dent) == [("reception.intake_photo", intake)]

    # a release that ran between records keeping the file again and the intake's commit
    # (simulated: the release row is back, the intake shows the photo) keeps it after all
    db = apps.state.runtime.db
    async with db.transaction() as session:
        session.add(
            FileRelease(
                file_id=uuid.UUID(r.json()["damage_marks"][0]["photo_file_id"]),
                owner="reception.intake_photo",
                owner_id=uuid.UUID(intake),
                branch="BR01",
            )
        )
    done = await file_releases.release_due(
        db,
        apps.state.settings,
        apps.state.records_transport,
        file_releases.service_token(apps.state.settings),
    )
    assert done in (0, 1)  # the background job may have taken it first
    assert await apps.pending() == []
    assert await apps.owners(dent) == [("reception.intake_photo", intake)]


# --- real processes: records down while a photo is removed, then back -----------------


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(
        tmp_path,
        services=("reception", "records"),
        extra_env={
            "RECORDS_FILE_GC_GRACE_SECONDS": "2",
            "RECORDS_FILE_GC_INTERVAL_SECONDS": "0.5",
            "RECORDS_FILES_DIR": str(tmp_path / "files"),
            "RECEPTION_FILE_RELEASE_INTERVAL_SECONDS": "0.2",
        },
    ).start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.mark.e2e
async def test_a_photo_removed_while_records_is_down_is_released_and_collected_later(
    stack: Stack,
):
    reception, records = stack.url("reception"), stack.url("records")
    async with httpx.AsyncClient(timeout=15) as client:
        _, vehicle = await register(client, reception)
        intake = await open_intake(client, reception, vehicle["id"])
        files = {}
        for name in ("dent", "scratch"):
            r = await client.post(
                f"{records}/files",
                headers=ADVISOR,
                files={"file": (f"{name}.png", png(f"{name}-{uuid.uuid4()}"))},
            )
            assert r.status_code == 201, r.text
            files[name] = r.json()["id"]
        url = f"{reception}/intakes/{intake['id']}"

        async def walkaround(body: dict[str, Any]) -> httpx.Response:
            etag = (await client.get(url, headers=ADVISOR)).headers["ETag"]
            return await client.patch(url, headers={**ADVISOR, "If-Match": etag}, json=body)

        marks = [mark(files["dent"]), mark(files["scratch"], "roof")]
        assert (await walkaround({"damage_marks": marks})).status_code == 200

        stack.services["records"].stop()
        r = await walkaround({"damage_marks": [mark(files["scratch"], "roof")]})
        assert r.status_code == 200, r.text
        stack.services["records"].start()

        async def dent_collected() -> bool:
            gone = await client.get(f"{records}/files/{files['dent']}", headers=ADVISOR)
            return gone.status_code == 404

        await eventually(dent_collected, timeout=40, what="the released photo collected")
        kept = await client.get(f"{records}/files/{files['scratch']}/references", headers=ADVISOR)
        assert [(x["owner"], x["owner_id"]) for x in kept.json()["items"]] == [
            ("reception.intake_photo", intake["id"])
        ]


@pytest.mark.postgres
async def test_two_failed_attempts_at_once_are_both_counted(pg_url: str) -> None:
    """The request that changed the walk-around and the background job (or two replicas)
    fail to release the same reference at the same moment: both attempts count, so the
    wait before the next one grows as it should."""
    db = Database(pg_url)
    await upgrade(db, SPEC.migrations)
    try:
        release = FileRelease(
            file_id=uuid.uuid4(),
            owner="reception.intake_photo",
            owner_id=uuid.uuid4(),
            branch="BR01",
        )
        async with db.transaction() as session:
            session.add(release)
        due = file_releases.Due(release.file_id, release.owner, release.owner_id, "BR01")

        async def fail() -> None:
            await file_releases._postpone(db, due, "records answered 503", 1.0)

        await second_starts_before_first_commits(
            pg_url,
            fail,
            fail,
            hold="SELECT 1 FROM file_release WHERE file_id = $1 FOR UPDATE",
            args=(release.file_id,),
        )
        async with db.reader() as session:
            row = await session.get(FileRelease, (release.file_id, release.owner, release.owner_id))
            assert row is not None and row.attempts == 2
    finally:
        await db.dispose()
