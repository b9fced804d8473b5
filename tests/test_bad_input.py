"""Bad input on every endpoint of the flow: a clear 4xx problem, and nothing written."""

import importlib
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
import pytest_asyncio
from sqlmodel import func, select

from services.reception.models import Customer, Intake, OutboxEvent, Vehicle
from tests.flow import valid_vin
from tests.harness import JWT_SECRET, NatsServer, auth

pytestmark = [pytest.mark.asyncio, pytest.mark.store]


@pytest_asyncio.fixture
async def reception(database_url: str, nats_server: NatsServer) -> AsyncIterator[httpx.AsyncClient]:
    async with _client("reception", database_url, nats_server) as client:
        yield client


class _client:
    def __init__(self, service: str, database_url: str, nats_server: NatsServer):
        main = importlib.import_module(f"services.{service}.main")
        config = importlib.import_module(f"services.{service}.config")
        self.app = main.create_app(
            config.Settings(database_url=database_url, nats_url=nats_server.url)
        )

    async def __aenter__(self) -> httpx.AsyncClient:
        self.lifespan = self.app.router.lifespan_context(self.app)
        await self.lifespan.__aenter__()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(self.app), base_url="http://test"
        )
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self.lifespan.__aexit__(None, None, None)


async def counts(client: httpx.AsyncClient) -> dict[str, int]:
    db = client._transport.app.state.runtime.db  # type: ignore[attr-defined]
    result = {}
    async with db.reader() as session:
        for model in (Customer, Vehicle, Intake, OutboxEvent):
            result[model.__name__] = (
                await session.exec(select(func.count()).select_from(model))
            ).one()
    return result


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:workshop:problem:")
    assert body["title"]
    if field is not None:
        assert field in {e["field"] for e in body["errors"]}, body
        assert field in body["detail"]
    return body


def expired_token() -> str:
    now = int(time.time())
    return jwt.encode(
        {"sub": "x", "roles": ["advisor"], "branch": "BR01", "iat": now - 7200, "exp": now - 3600},
        JWT_SECRET,
        algorithm="HS256",
    )


BAD_TOKENS = {
    "missing": {},
    "not a jwt": {"Authorization": "Bearer not-a-token"},
    "wrong secret": {
        "Authorization": "Bearer "
        + jwt.encode(
            {"sub": "x", "roles": ["advisor"], "branch": "BR01", "exp": int(time.time()) + 60},
            "another-secret-of-sufficient-length-000",
            algorithm="HS256",
        )
    },
    "expired": {"Authorization": f"Bearer {expired_token()}"},
    "no branch": {
        "Authorization": "Bearer "
        + jwt.encode(
            {"sub": "x", "roles": ["advisor"], "exp": int(time.time()) + 60},
            JWT_SECRET,
            algorithm="HS256",
        )
    },
    "basic auth": {"Authorization": "Basic dXNlcjpwYXNz"},
}


async def test_bad_input_gets_problems_and_writes_nothing(reception: httpx.AsyncClient):
    advisor = auth("advisor")
    r = await reception.post("/customers", headers=advisor, json={"name": "Ok"})
    assert r.status_code == 201
    customer_id = r.json()["id"]
    r = await reception.post(
        "/vehicles", headers=advisor, json={"customer_id": customer_id, "vin": valid_vin()}
    )
    assert r.status_code == 201
    vehicle_id = r.json()["id"]
    before = await counts(reception)
    json_headers = {**advisor, "content-type": "application/json"}

    for path in ("/customers", "/vehicles", "/intakes"):
        body = assert_problem(
            await reception.post(path, headers=json_headers, content=b'{"name": '), 400
        )
        assert body["type"].endswith("malformed-json")
        assert_problem(await reception.post(path, headers=json_headers, content=b"[1, 2]"), 422)

    # wrong types
    assert_problem(
        await reception.post("/customers", headers=advisor, json={"name": 42}), 422, "name"
    )
    assert_problem(
        await reception.post(
            "/customers", headers=advisor, json={"name": "A", "contact_consent": "maybe"}
        ),
        422,
        "contact_consent",
    )
    assert_problem(
        await reception.post(
            "/vehicles", headers=advisor, json={"customer_id": "not-a-uuid", "vin": valid_vin()}
        ),
        422,
        "customer_id",
    )
    assert_problem(
        await reception.post(
            "/intakes", headers=advisor, json={"vehicle_id": vehicle_id, "odometer_km": "far"}
        ),
        422,
        "odometer_km",
    )
    assert_problem(
        await reception.post(
            "/intakes", headers=advisor, json={"vehicle_id": vehicle_id, "odometer_km": -5}
        ),
        422,
        "odometer_km",
    )
    assert_problem(
        await reception.post(
            "/intakes", headers=advisor, json={"vehicle_id": str(uuid.uuid4()), "odometer_km": 5}
        ),
        422,
        "vehicle_id",
    )
    assert_problem(
        await reception.post("/customers", headers=advisor, json={"name": "A", "unexpected": 1}),
        422,
        "unexpected",
    )
    # oversize strings
    assert_problem(
        await reception.post("/customers", headers=advisor, json={"name": "x" * 101}), 422, "name"
    )
    assert_problem(
        await reception.post(
            "/intakes",
            headers=advisor,
            json={"vehicle_id": vehicle_id, "odometer_km": 1, "concerns": ["y" * 1001]},
        ),
        422,
        "concerns.0",
    )
    assert_problem(
        await reception.post(
            "/customers", headers=advisor, json={"name": "x", "company": "c" * 10_000}
        ),
        422,
        "company",
    )
    # a body over the limit is refused before it is read whole
    body = assert_problem(
        await reception.post(
            "/customers", headers=json_headers, content=b'{"name": "' + b"z" * 2_000_000 + b'"}'
        ),
        413,
    )
    assert "bytes" in body["detail"]
    # bad VINs
    for vin, reason in [
        ("LSVAU2180N218329", "17 characters"),
        ("LSVAU2180N21832I4", "alphanumeric"),
        ("LSVAU2180N2183294", "check digit"),
        ("1HGCM82633A004353", "check digit"),
    ]:
        body = assert_problem(
            await reception.post(
                "/vehicles", headers=advisor, json={"customer_id": customer_id, "vin": vin}
            ),
            422,
            "vin",
        )
        assert reason in body["detail"], body["detail"]
    # the same VIN twice is a conflict, not a second vehicle
    r = await reception.get(f"/vehicles/{vehicle_id}", headers=advisor)
    assert_problem(
        await reception.post(
            "/vehicles", headers=advisor, json={"customer_id": customer_id, "vin": r.json()["vin"]}
        ),
        409,
    )
    # missing or wrong tokens, and a role that may not write
    for name, headers in BAD_TOKENS.items():
        for path, payload in [
            ("/customers", {"name": "A"}),
            ("/intakes", {"vehicle_id": vehicle_id, "odometer_km": 1}),
        ]:
            response = await reception.post(path, headers=headers, json=payload)
            assert_problem(response, 401)
            assert response.headers.get("www-authenticate") == "Bearer", name
    assert_problem(
        await reception.post("/customers", headers=auth("technician"), json={"name": "A"}), 403
    )
    # another branch cannot open an intake on this branch's vehicle
    assert_problem(
        await reception.post(
            "/intakes",
            headers=auth("advisor", "BR02"),
            json={"vehicle_id": vehicle_id, "odometer_km": 1},
        ),
        422,
        "vehicle_id",
    )

    assert await counts(reception) == before


@pytest.mark.parametrize(
    "service, path",
    [
        ("reception", "/customers/{id}"),
        ("reception", "/vehicles/{id}"),
        ("reception", "/intakes/{id}"),
        ("workorders", "/repair-orders/{id}"),
        ("followup", "/contacts/{id}"),
        ("records", "/vehicles/{id}/timeline"),
    ],
)
async def test_read_endpoints_refuse_bad_ids_cursors_and_tokens(
    service: str, path: str, database_url: str, nats_server: NatsServer
) -> None:
    headers = auth(["advisor", "foreman", "records_clerk", "followup_agent"])
    async with _client(service, database_url, nats_server) as client:
        assert_problem(await client.get(path.format(id="nope"), headers=headers), 422)
        assert_problem(await client.get(path.format(id=uuid.uuid4()), headers=headers), 404)
        for bad in BAD_TOKENS.values():
            assert_problem(await client.get(path.format(id=uuid.uuid4()), headers=bad), 401)
        assert_problem(await client.get(path.format(id=uuid.uuid4()), headers=auth("erp")), 403)
        list_path = path.split("/{id}")[0]
        if list_path in ("/customers", "/repair-orders", "/contacts"):
            assert_problem(
                await client.get(list_path, headers=headers, params={"cursor": "garbage!"}),
                422,
                "cursor",
            )
            assert_problem(
                await client.get(list_path, headers=headers, params={"limit": 100000}), 422, "limit"
            )
