"""An Idempotency-Key is the user's in one branch: the same person with a token for another
branch and the same key gets that branch's own answer, never the first branch's."""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import BaseModel
from sqlalchemy import inspect, text

from services.reception.main import SPEC as RECEPTION
from services.workorders.config import Settings
from services.workorders.main import create_app
from shared.db import Database
from shared.idempotency import IDEMPOTENCY_MODEL, Idempotency
from shared.migrations import upgrade
from tests.harness import NatsServer, token
from tests.test_bad_input import reception  # noqa: F401
from tests.test_workorders_clocking import LI, _jobs

pytestmark = [pytest.mark.asyncio, pytest.mark.store]


def person(branch: str, role: str = "advisor", key: str = "tablet-9-0001") -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token(role, branch, sub='zhang-wei')}",
        "Idempotency-Key": key,
    }


async def test_the_same_key_in_another_branch_is_another_request(
    reception: httpx.AsyncClient,  # noqa: F811
) -> None:
    body = {"name": "王芳", "mobile": "13800138000"}
    first = await reception.post("/customers", headers=person("BR01"), json=body)
    assert first.status_code == 201 and first.json()["branch"] == "BR01"

    elsewhere = await reception.post("/customers", headers=person("BR02"), json=body)
    assert elsewhere.status_code == 201, elsewhere.text
    assert "Idempotent-Replayed" not in elsewhere.headers
    assert elsewhere.json()["branch"] == "BR02"
    assert elsewhere.json()["id"] != first.json()["id"]

    # Each branch's retry gets its own first answer.
    for branch, answer in (("BR01", first), ("BR02", elsewhere)):
        again = await reception.post("/customers", headers=person(branch), json=body)
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == answer.json()
    for branch in ("BR01", "BR02"):
        r = await reception.get("/customers", headers=person(branch))
        assert len(r.json()["items"]) == 1


@pytest_asyncio.fixture
async def workorders(
    database_url: str, nats_server: NatsServer
) -> AsyncIterator[tuple[httpx.AsyncClient, Database]]:
    app = create_app(Settings(database_url=database_url, nats_url=nats_server.url))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client,
    ):
        yield client, app.state.runtime.db


async def test_a_clocking_key_is_not_replayed_in_another_branch(
    workorders: tuple[httpx.AsyncClient, Database],
) -> None:
    """Clocking writes its key on the hot transaction, not through a session."""
    client, db = workorders
    [job] = await _jobs(db, "1")

    def technician(branch: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {token('technician', branch, sub=LI.id)}",
            "Idempotency-Key": "clock-1",
        }

    on = await client.post(f"/jobs/{job}/clock-on", headers=technician("BR01"))
    assert on.status_code == 201, on.text
    # BR02 has no such job: no BR01 time entry comes back under the same key.
    elsewhere = await client.post(f"/jobs/{job}/clock-on", headers=technician("BR02"))
    assert elsewhere.status_code == 404, elsewhere.text
    again = await client.post(f"/jobs/{job}/clock-on", headers=technician("BR01"))
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == on.json()


async def test_a_key_answered_before_the_upgrade_still_answers_its_retry(
    database_url: str,
) -> None:
    """Records from before keys were scoped by branch keep the change from happening twice
    across the upgrade, and the table's primary key holds the branch."""
    db = Database(database_url, info={IDEMPOTENCY_MODEL: RECEPTION.idempotency_model})
    try:
        await upgrade(db, RECEPTION.migrations, "0011")
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO idempotency_record"
                    " (user_id, key, fingerprint, status_code, body, created_at)"
                    " VALUES ('zhang-wei', 'k-1', 'f', 201, '{\"id\": 7}', '2026-12-01 08:00:00')"
                )
            )
        await upgrade(db, RECEPTION.migrations)
        async with db.engine.connect() as conn:
            key = await conn.run_sync(lambda c: inspect(c).get_pk_constraint("idempotency_record"))
        assert sorted(key["constrained_columns"]) == ["branch", "key", "user_id"]

        async def work() -> Any:
            raise AssertionError("the change was made before the upgrade")

        async with db.transaction() as session:
            replay = await Idempotency(session, "zhang-wei", "k-1", "f", branch="BR01").run(
                work, _Answer
            )
        assert replay.headers["Idempotent-Replayed"] == "true"

        # New records are the branch's: the same key in two branches, one record each.
        for branch in ("BR01", "BR02"):
            async with db.transaction() as session:
                await Idempotency(session, "li-na", "k-2", "f", branch=branch).run(_answer, _Answer)
        async with db.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT branch FROM idempotency_record WHERE user_id = 'li-na'")
            )
            assert sorted(r[0] for r in rows) == ["BR01", "BR02"]
    finally:
        await db.dispose()


class _Answer(BaseModel):
    id: uuid.UUID


async def _answer() -> _Answer:
    return _Answer(id=uuid.uuid4())
