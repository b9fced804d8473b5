"""The desk: search by plate, VIN tail, phone and name; odometer history; owner changes."""

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from tests.flow import valid_vin
from tests.harness import NatsServer, auth, second_starts_before_first_commits
from tests.test_bad_input import _client, assert_problem

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

ADVISOR = auth("advisor")


@pytest_asyncio.fixture
async def reception(database_url: str, nats_server: NatsServer) -> AsyncIterator[httpx.AsyncClient]:
    async with _client("reception", database_url, nats_server) as client:
        yield client


async def _customer(client: httpx.AsyncClient, name: str, mobile: str) -> str:
    r = await client.post("/customers", headers=ADVISOR, json={"name": name, "mobile": mobile})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _vehicle(client: httpx.AsyncClient, customer_id: str, plate: str, vin: str) -> str:
    r = await client.post(
        "/vehicles", headers=ADVISOR, json={"customer_id": customer_id, "vin": vin, "plate": plate}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_the_desk_finds_vehicles_by_plate_vin_tail_phone_and_name(
    reception: httpx.AsyncClient,
):
    wang = await _customer(reception, "王芳", "13800138000")
    li = await _customer(reception, "李雷", "13900139000")
    vins = [valid_vin() for _ in range(3)]
    await _vehicle(reception, wang, "沪A12345", vins[0])
    await _vehicle(reception, wang, "沪B54321", vins[1])
    await _vehicle(reception, li, "京C12399", vins[2])

    async def plates(**params: str) -> list[str]:
        r = await reception.get("/search", headers=auth("cashier"), params=params)
        assert r.status_code == 200, r.text
        return sorted(hit["plate"] for hit in r.json()["items"])

    assert await plates(plate="123") == ["京C12399", "沪A12345"]
    assert await plates(plate="a12") == ["沪A12345"]
    assert await plates(vin_last6=vins[1][-6:]) == ["沪B54321"]
    assert await plates(phone="13800138000") == ["沪A12345", "沪B54321"]
    assert await plates(name="王") == ["沪A12345", "沪B54321"]
    assert await plates(name="王", plate="123") == ["沪A12345"]
    assert await plates(plate="%_") == []

    first = await reception.get("/search", headers=ADVISOR, params={"plate": "12", "limit": 1})
    body = first.json()
    assert len(body["items"]) == 1 and body["next_cursor"]
    second = await reception.get(
        "/search", headers=ADVISOR, params={"plate": "12", "cursor": body["next_cursor"]}
    )
    assert len(second.json()["items"]) == 1
    assert second.json()["items"][0]["vehicle_id"] != body["items"][0]["vehicle_id"]

    other_branch = await reception.get(
        "/search", headers=auth("advisor", "BR02"), params={"plate": "123"}
    )
    assert other_branch.json()["items"] == []
    assert_problem(await reception.get("/search", headers=ADVISOR), 422, "q")
    assert_problem(
        await reception.get("/search", headers=ADVISOR, params={"vin_last6": "12"}),
        422,
        "vin_last6",
    )
    assert_problem(
        await reception.get("/search", headers=ADVISOR, params={"plate": "1", "limit": 0}), 422
    )
    assert_problem(
        await reception.get("/search", headers=auth("technician"), params={"plate": "12"}), 403
    )


async def test_a_lower_odometer_reading_needs_a_reason(reception: httpx.AsyncClient):
    customer = await _customer(reception, "王芳", "13800138000")
    vehicle = await _vehicle(reception, customer, "沪A12345", valid_vin())
    r = await reception.post(
        "/intakes", headers=ADVISOR, json={"vehicle_id": vehicle, "odometer_km": 42000}
    )
    assert r.status_code == 201, r.text
    lower = await reception.post(
        "/intakes", headers=ADVISOR, json={"vehicle_id": vehicle, "odometer_km": 41000}
    )
    body = assert_problem(lower, 422, "odometer_km")
    assert body["last_km"] == 42000
    url = f"/vehicles/{vehicle}/odometer"
    assert_problem(await reception.post(url, headers=ADVISOR, json={"km": 100}), 422, "km")
    assert_problem(await reception.post(url, headers=ADVISOR, json={"km": -1}), 422, "km")
    r = await reception.post(
        url, headers=ADVISOR, json={"km": 100, "override_reason": "仪表更换 cluster replaced"}
    )
    assert r.status_code == 201, r.text
    assert (await reception.post(url, headers=ADVISOR, json={"km": 150})).status_code == 201
    history = await reception.get(url, headers=auth("foreman"))
    assert [reading["km"] for reading in history.json()["items"]] == [150, 100, 42000]
    assert history.json()["items"][2]["intake_id"] is not None
    assert_problem(await reception.post(url, headers=auth("cashier"), json={"km": 200}), 403)
    assert_problem(await reception.get(url, headers=auth("advisor", "BR02")), 404)


async def test_an_owner_change_keeps_the_history(reception: httpx.AsyncClient):
    wang = await _customer(reception, "王芳", "13800138000")
    li = await _customer(reception, "李雷", "13900139000")
    vehicle = await _vehicle(reception, wang, "沪A12345", valid_vin())
    url = f"/vehicles/{vehicle}/owner"
    headers = {**ADVISOR, "Idempotency-Key": "sold-1"}
    r = await reception.post(url, headers=headers, json={"customer_id": li, "reason": "过户"})
    assert r.status_code == 201, r.text
    retry = await reception.post(url, headers=headers, json={"customer_id": li, "reason": "过户"})
    assert retry.json() == r.json()
    assert_problem(await reception.post(url, headers=ADVISOR, json={"customer_id": li}), 409)
    assert_problem(
        await reception.post(
            url, headers=ADVISOR, json={"customer_id": "6f1c2d9e-8a4b-4c1e-9f7d-2b3a4c5d6e7f"}
        ),
        422,
        "customer_id",
    )
    vehicle_now = await reception.get(f"/vehicles/{vehicle}", headers=ADVISOR)
    assert vehicle_now.json()["customer_id"] == li
    history = await reception.get(f"/vehicles/{vehicle}/owners", headers=ADVISOR)
    assert [(h["from_customer_id"], h["to_customer_id"]) for h in history.json()["items"]] == [
        (wang, li)
    ]
    found = await reception.get("/search", headers=ADVISOR, params={"name": "李"})
    assert [hit["vehicle_id"] for hit in found.json()["items"]] == [vehicle]


@pytest.mark.postgres
async def test_two_owner_changes_at_once_chain_in_the_history(
    pg_url: str, nats_server: NatsServer
) -> None:
    """Two advisors pass the same car on at the same moment, the second starting before
    the first commits: the history reads seller → first buyer → second buyer, and the car
    ends with the second buyer."""
    async with _client("reception", pg_url, nats_server) as reception:
        seller = await _customer(reception, "王芳", "13800138000")
        first = await _customer(reception, "李雷", "13900139000")
        second = await _customer(reception, "韩梅梅", "13700137000")
        car = await _vehicle(reception, seller, "沪A12345", valid_vin())

        async def sell(buyer: str) -> None:
            r = await reception.post(
                f"/vehicles/{car}/owner",
                headers=ADVISOR,
                json={"customer_id": buyer, "reason": "sold"},
            )
            assert r.status_code == 201, r.text

        await second_starts_before_first_commits(
            pg_url,
            lambda: sell(first),
            lambda: sell(second),
            hold="SELECT 1 FROM vehicle WHERE id = $1 FOR UPDATE",
            args=(uuid.UUID(car),),
        )
        r = await reception.get(f"/vehicles/{car}/owners", headers=ADVISOR)
        assert r.status_code == 200, r.text
        chain = [(c["from_customer_id"], c["to_customer_id"]) for c in r.json()["items"]]
        assert chain == [(seller, first), (first, second)]
        r = await reception.get(f"/vehicles/{car}", headers=ADVISOR)
        assert r.json()["customer_id"] == second


async def test_a_vin_is_checked_as_it_is_typed(reception: httpx.AsyncClient):
    """`GET /vins/{vin}`: the registration's own check, before anything is written."""
    vin = valid_vin()
    r = await reception.get(f"/vins/{vin.lower()}", headers=ADVISOR)
    assert r.status_code == 200, r.text
    assert r.json()["vin"] == vin and r.json()["registered_vehicle_id"] is None

    short = await reception.get(f"/vins/{vin[:12]}", headers=ADVISOR)
    assert_problem(short, 422, "vin")
    wrong_digit = vin[:8] + ("1" if vin[8] != "1" else "2") + vin[9:]
    bad = await reception.get(f"/vins/{wrong_digit}", headers=ADVISOR)
    assert_problem(bad, 422, "vin")
    assert "check digit" in bad.json()["errors"][0]["message"]

    owner = await _customer(reception, "王芳", "13800138000")
    vehicle = await _vehicle(reception, owner, "沪A12345", vin)
    again = await reception.get(f"/vins/{vin}", headers=auth("cashier"))
    assert again.json()["registered_vehicle_id"] == vehicle
    other_branch = await reception.get(f"/vins/{vin}", headers=auth("advisor", "BR02"))
    assert other_branch.json()["registered_vehicle_id"] is None
