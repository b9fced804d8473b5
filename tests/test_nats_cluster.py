"""A service on a three-node JetStream cluster on loopback, given the list of servers."""

import uuid
from pathlib import Path

import httpx
import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError

from tests.harness import NatsCluster, ServiceProcess, auth, eventually

pytestmark = [pytest.mark.asyncio]


class Admin:
    """A client of the cluster's own, to read what the service published."""

    def __init__(self, cluster: NatsCluster):
        self.cluster = cluster
        self.nc = NATS()

    async def __aenter__(self) -> "Admin":
        urls = [node.url for node in self.cluster.nodes]
        await self.nc.connect(servers=urls, connect_timeout=2)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.nc.close()


# --- a list of servers -------------------------------------------------------------


@pytest.mark.e2e
async def test_a_service_given_the_cluster_list_publishes_with_the_first_node_down(
    database_url: str, nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    """RECEPTION_NATS_URL names all three nodes, comma-separated: the service becomes ready
    and publishes; with the first-listed node down it still publishes, and a restart
    while that node is down connects to the others."""
    env = {
        "RECEPTION_DATABASE_URL": database_url,
        "RECEPTION_NATS_URL": nats_cluster.url,
        "RECEPTION_STREAM_REPLICAS": "3",
    }
    assert "," in env["RECEPTION_NATS_URL"]
    reception = ServiceProcess("reception", env, tmp_path / "logs")
    async with Admin(nats_cluster) as admin:
        try:
            reception.start()
            await _ready(reception)
            await _registered_and_published(reception, admin)
            nats_cluster.nodes[0].kill()
            await _registered_and_published(reception, admin)
            reception.stop()
            reception.start()
            await _ready(reception)
            await _registered_and_published(reception, admin)
        finally:
            reception.stop()


async def _ready(service: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=service.url) as client:

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await eventually(ready, timeout=30, what=f"{service.name} ready: {service.log_tail()}")


async def _registered_and_published(service: ServiceProcess, admin: Admin) -> None:
    mobile = f"139{uuid.uuid4().int % 10**8:08d}"
    async with httpx.AsyncClient(base_url=service.url, headers=auth("advisor")) as client:
        answer = await client.post("/customers", json={"name": "王芳", "mobile": mobile})
        assert answer.status_code == 201, answer.text
        customer_id = answer.json()["id"]
    js = admin.nc.jetstream(timeout=2)

    async def published() -> bool:
        try:
            message = await js.get_last_msg("RECEPTION", "reception.customer.registered.v1")
        except (NotFoundError, nats.errors.TimeoutError):
            return False
        return customer_id in (message.data or b"").decode()

    await eventually(published, timeout=30, what=f"customer {customer_id} on the stream")
