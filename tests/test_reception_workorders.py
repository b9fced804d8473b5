"""Reception and workorders in one process over a real nats-server: the consent flow and
extra work, without starting service processes."""

import contextlib

import httpx
import pytest

from services.reception.config import Settings as ReceptionSettings
from services.reception.main import create_app as reception_app
from services.workorders.config import Settings as WorkordersSettings
from services.workorders.main import create_app as workorders_app
from tests.harness import NatsServer, create_pg_database, drop_pg_database
from tests.test_reception_flow_e2e import consent_flow

pytestmark = [pytest.mark.asyncio, pytest.mark.store]


async def test_consent_and_extra_work_between_reception_and_workorders(
    database_url: str, nats_server: NatsServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    postgres = not database_url.startswith("sqlite")
    other_db = (
        await create_pg_database("ws_wo")
        if postgres
        else f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('wo') / 'workorders.db'}"
    )
    reception = reception_app(
        ReceptionSettings(database_url=database_url, nats_url=nats_server.url)
    )
    workorders = workorders_app(WorkordersSettings(database_url=other_db, nats_url=nats_server.url))
    async with contextlib.AsyncExitStack() as stack:
        if postgres:
            stack.push_async_callback(drop_pg_database, other_db)
        await stack.enter_async_context(reception.router.lifespan_context(reception))
        await stack.enter_async_context(workorders.router.lifespan_context(workorders))
        client = await stack.enter_async_context(
            httpx.AsyncClient(
                mounts={
                    "http://reception": httpx.ASGITransport(reception),
                    "http://workorders": httpx.ASGITransport(workorders),
                },
                timeout=10,
            )
        )
        await consent_flow(client, "http://reception", "http://workorders")
