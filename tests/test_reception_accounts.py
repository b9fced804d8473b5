"""Customers with several mobile numbers, company and fleet accounts, and the desk search
over them: any number finds the customer, any part of a plate finds the vehicle."""

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from tests.flow import valid_vin
from tests.harness import NatsServer, auth
from tests.test_bad_input import _client, assert_problem

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

ADVISOR = auth("advisor")


@pytest_asyncio.fixture
async def reception(database_url: str, nats_server: NatsServer) -> AsyncIterator[httpx.AsyncClient]:
    async with _client("reception", database_url, nats_server) as client:
        yield client


async def _customer(reception: httpx.AsyncClient, **body: object) -> dict[str, object]:
    r = await reception.post("/customers", headers=ADVISOR, json={"name": "顺丰车队", **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _vehicle(reception: httpx.AsyncClient, customer_id: object, plate: str) -> str:
    r = await reception.post(
        "/vehicles",
        headers=ADVISOR,
        json={"customer_id": customer_id, "vin": valid_vin(), "plate": plate},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _search(reception: httpx.AsyncClient, **params: str) -> list[str]:
    r = await reception.get("/search", headers=auth("foreman"), params=params)
    assert r.status_code == 200, r.text
    return [hit["vehicle_id"] for hit in r.json()["items"]]


async def test_a_fleet_account_with_several_numbers_is_found_by_any_of_them(
    reception: httpx.AsyncClient,
):
    fleet = await _customer(
        reception,
        mobile="13800000001",
        other_mobiles=["13800000002", "021-5555 6666"],
        account_kind="fleet",
        company="顺丰速运上海分公司",
    )
    assert fleet["account_kind"] == "fleet" and fleet["other_mobiles"] == [
        "13800000002",
        "021-5555 6666",
    ]
    vans = [await _vehicle(reception, fleet["id"], plate) for plate in ("沪A1234F", "沪B5678F")]
    for number in ("13800000001", "13800000002", "021-5555 6666"):
        assert await _search(reception, phone=number) == vans[::-1]
    listed = await reception.get(f"/customers/{fleet['id']}/vehicles", headers=auth("cashier"))
    assert [v["id"] for v in listed.json()["items"]] == vans[::-1]
    assert listed.json()["next_cursor"] is None
    # A fleet's list is paged: one at a time here, then the rest, nothing twice.
    url = f"/customers/{fleet['id']}/vehicles"
    first = (await reception.get(url, headers=ADVISOR, params={"limit": 1})).json()
    assert [v["id"] for v in first["items"]] == vans[::-1][:1]
    rest = await reception.get(url, headers=ADVISOR, params={"cursor": first["next_cursor"]})
    assert [v["id"] for v in rest.json()["items"]] == vans[::-1][1:]
    assert rest.json()["next_cursor"] is None
    assert_problem(
        await reception.get(f"/customers/{fleet['id']}/vehicles", headers=auth("advisor", "BR02")),
        404,
    )
    assert_problem(
        await reception.get(f"/customers/{fleet['id']}/vehicles", headers=auth("technician")), 403
    )

    # a number added later is found too; adding it again changes nothing
    url = f"/customers/{fleet['id']}/mobiles"
    r = await reception.post(url, headers=ADVISOR, json={"mobile": "13900000009"})
    assert r.status_code == 200 and r.json()["other_mobiles"][-1] == "13900000009"
    again = await reception.post(url, headers=ADVISOR, json={"mobile": "13900000009"})
    assert again.json()["other_mobiles"] == r.json()["other_mobiles"]
    assert await _search(reception, phone="13900000009") == vans[::-1]
    assert_problem(await reception.post(url, headers=ADVISOR, json={"mobile": "x"}), 422, "mobile")
    assert_problem(
        await reception.post(url, headers=auth("advisor", "BR02"), json={"mobile": "13900000008"}),
        404,
    )
    assert await _search(reception, phone="13900000008") == []


async def test_accounts_refuse_bad_input(reception: httpx.AsyncClient):
    for body, field in [
        ({"name": "x", "account_kind": "company"}, "company"),
        ({"name": "x", "account_kind": "club"}, "account_kind"),
        ({"name": "x", "other_mobiles": ["12"]}, "other_mobiles.0"),
        ({"name": "x", "other_mobiles": [f"1380000000{i}" for i in range(6)]}, "other_mobiles"),
        ({"name": "x", "mobile": "13800000000", "other_mobiles": ["13800000000"]}, "other_mobiles"),
        ({"name": "x", "other_mobiles": ["13800000001", "13800000001"]}, "other_mobiles"),
    ]:
        r = await reception.post("/customers", headers=ADVISOR, json=body)
        problem = assert_problem(r, 422)
        assert field in problem["detail"], (field, problem)
    listed = await reception.get("/customers", headers=ADVISOR)
    assert listed.json()["items"] == []


async def test_any_part_of_a_plate_finds_the_vehicle(reception: httpx.AsyncClient):
    owner = await _customer(reception, mobile="13700000000")
    v = {
        plate: await _vehicle(reception, owner["id"], plate)
        for plate in ("沪A12345", "沪A12399", "京C88123", "苏E0A1_2")
    }
    assert await _search(reception, plate="123") == [v["京C88123"], v["沪A12399"], v["沪A12345"]]
    assert await _search(reception, plate="a123") == [v["沪A12399"], v["沪A12345"]]
    assert await _search(reception, plate="2345") == [v["沪A12345"]]
    assert await _search(reception, plate="沪A12345") == [v["沪A12345"]]
    assert await _search(reception, plate="99") == [v["沪A12399"]]  # short: scanned
    assert await _search(reception, plate="1_2") == [v["苏E0A1_2"]]  # no wildcard
    assert await _search(reception, plate="A1_") == [v["苏E0A1_2"]]
    assert await _search(reception, plate="_2") == [v["苏E0A1_2"]]
    assert await _search(reception, plate="12346") == []
    assert await _search(reception, plate="123", phone="13700000000") == [
        v["京C88123"],
        v["沪A12399"],
        v["沪A12345"],
    ]
    # another branch does not see them
    r = await reception.get("/search", headers=auth("advisor", "BR02"), params={"plate": "123"})
    assert r.json()["items"] == []
    # pages follow each other without repeats
    first = await reception.get("/search", headers=ADVISOR, params={"plate": "123", "limit": 2})
    body = first.json()
    second = await reception.get(
        "/search",
        headers=ADVISOR,
        params={"plate": "123", "limit": 2, "cursor": body["next_cursor"]},
    )
    assert [h["vehicle_id"] for h in body["items"] + second.json()["items"]] == [
        v["京C88123"],
        v["沪A12399"],
        v["沪A12345"],
    ]


async def test_a_common_name_prefix_finds_the_same_vehicles_as_a_rare_one(
    reception: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
):
    """Both ways of serving a name prefix give the same pages, newest first."""
    from services.reception import desk

    expected: list[str] = []
    for name in ("王芳", "王伟", "李雷", "王小明", "Wang"):
        customer = await _customer(reception, name=name)
        vehicle = await _vehicle(reception, customer["id"], f"沪C{len(expected):05d}")
        if name.startswith("王"):
            expected.insert(0, vehicle)

    async def pages(prefix: str, by: str = "name") -> list[str]:
        found, cursor = [], None
        while True:
            params = {by: prefix, "limit": "2", **({"cursor": cursor} if cursor else {})}
            body = (await reception.get("/search", headers=ADVISOR, params=params)).json()
            found += [hit["vehicle_id"] for hit in body["items"]]
            if not (cursor := body["next_cursor"]):
                return found

    rare, rare_plates = await pages("王"), await pages("沪C0", "plate")
    monkeypatch.setattr(desk, "COMMON_PREFIX", 2)  # three customers now count as common
    common, common_plates = await pages("王"), await pages("沪C0", "plate")
    assert rare == common == expected
    assert len(rare_plates) == 5 and rare_plates == common_plates
    assert await pages("王小") == expected[:1]
    assert await pages("Wa") == [(await _search(reception, name="Wang"))[0]]
