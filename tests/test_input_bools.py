"""A yes/no in a request body is JSON true or false: pydantic's lax mode took 0, 1, "yes"
and "off" as answers (the contract leg found `{"active": 0}` accepted)."""

import pytest

from tests.harness import NatsServer
from tests.test_bad_input import _client, assert_problem
from tests.test_input_dates import EVERYONE, rows

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

NOT_BOOLS = [0, 1, "true", "yes", "off", None]


async def test_records_takes_only_true_or_false(database_url: str, nats_server: NatsServer):
    async with _client("records", database_url, nats_server) as client:
        r = await client.post("/webhooks/erp-sources", headers=EVERYONE, json={"name": "SAP B1"})
        assert r.status_code == 201, r.text
        source = f"/webhooks/erp-sources/{r.json()['id']}"
        before = await rows(client)
        for value in NOT_BOOLS:
            r = await client.patch(source, headers=EVERYONE, json={"active": value})
            if value is None:  # null: "not changed", as for every field of an update
                assert r.status_code == 200, r.text
                continue
            assert_problem(r, 422, "active")
            r = await client.post(
                "/webhooks/endpoints",
                headers=EVERYONE,
                json={
                    "url": "http://127.0.0.1:9/x",
                    "event_types": ["invoice.settled"],
                    "active": value,
                },
            )
            assert_problem(r, 422, "active")
        assert await rows(client) == before
        r = await client.patch(source, headers=EVERYONE, json={"active": False})
        assert r.status_code == 200 and r.json()["active"] is False


async def test_reception_takes_only_true_or_false(database_url: str, nats_server: NatsServer):
    async with _client("reception", database_url, nats_server) as client:
        before = await rows(client)
        for value in NOT_BOOLS:
            r = await client.post(
                "/customers",
                headers=EVERYONE,
                json={"name": "王芳", "mobile": "13800138000", "contact_consent": value},
            )
            assert_problem(r, 422, "contact_consent")
        assert await rows(client) == before
