"""Editing a customer at the desk (PATCH with If-Match) and the events of a customer edit
and an owner change, as they reach NATS."""

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import orjson
import pytest
import pytest_asyncio
from sqlmodel import col, func, select

from services.reception.models import CustomerPhone, OutboxEvent
from tests.flow import register
from tests.harness import NatsServer, auth, eventually
from tests.test_bad_input import _client, assert_problem

ADVISOR = auth("advisor")


@pytest_asyncio.fixture
async def reception(database_url: str, nats_server: NatsServer) -> AsyncIterator[httpx.AsyncClient]:
    async with _client("reception", database_url, nats_server) as client:
        yield client


@contextlib.asynccontextmanager
async def _events(nats_url: str, subject: str) -> AsyncIterator[list[dict[str, Any]]]:
    connection = await nats.connect(nats_url)
    seen: list[dict[str, Any]] = []

    async def collect(msg: Any) -> None:
        seen.append(orjson.loads(msg.data))

    await connection.subscribe(subject, cb=collect)
    try:
        yield seen
    finally:
        await connection.drain()


async def _phones(client: httpx.AsyncClient, customer_id: str) -> set[str]:
    db = client._transport.app.state.runtime.db  # type: ignore[attr-defined]
    async with db.reader() as session:
        rows = await session.exec(
            select(CustomerPhone.number).where(
                col(CustomerPhone.customer_id) == uuid.UUID(customer_id)
            )
        )
        return set(rows.all())


async def _outbox_rows(client: httpx.AsyncClient) -> int:
    db = client._transport.app.state.runtime.db  # type: ignore[attr-defined]
    async with db.reader() as session:
        return int((await session.exec(select(func.count()).select_from(OutboxEvent))).one())


@pytest.mark.asyncio
@pytest.mark.store
async def test_a_customer_is_edited_with_if_match_and_the_phone_search_follows(
    reception: httpx.AsyncClient,
):
    customer, vehicle = await register(reception, "", name="王芳")
    url = f"/customers/{customer['id']}"
    read = await reception.get(url, headers=ADVISOR)
    etag = read.headers["ETag"]
    change = {
        "name": "王芳芳",
        "mobile": "13900000001",
        "other_mobiles": ["13900000002"],
        "preferred_channel": "wechat",
        "language": "en",
        "contact_consent": False,
        "account_kind": "company",
        "company": "上海某某物流",
    }
    r = await reception.patch(url, headers={**ADVISOR, "If-Match": etag}, json=change)
    assert r.status_code == 200, r.text
    body = r.json()
    assert {k: body[k] for k in change} == change
    assert r.headers["ETag"] != etag and r.headers["ETag"] == f'"{body["version"]}"'
    assert (await reception.get(url, headers=ADVISOR)).json() == body
    # the old main number no longer finds the customer; both new ones do
    assert await _phones(reception, customer["id"]) == {"13900000001", "13900000002"}
    for phone, found in (("13800000000", 0), ("13900000001", 1), ("13900000002", 1)):
        hits = (await reception.get("/search", headers=ADVISOR, params={"phone": phone})).json()
        assert len(hits["items"]) == found, (phone, hits)
    hits = (await reception.get("/search", headers=ADVISOR, params={"name": "王芳芳"})).json()
    assert [h["vehicle_id"] for h in hits["items"]] == [vehicle["id"]]

    # a second tablet with the first ETag loses; without If-Match it is asked for one
    stale = await reception.patch(url, headers={**ADVISOR, "If-Match": etag}, json={"name": "X"})
    assert_problem(stale, 412)
    assert_problem(await reception.patch(url, headers=ADVISOR, json={"name": "X"}), 428)
    # fields left out stay as they are; company may be cleared once the account is private
    r = await reception.patch(
        url,
        headers={**ADVISOR, "If-Match": r.headers["ETag"]},
        json={"account_kind": "private", "company": None},
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "王芳芳" and r.json()["company"] is None
    assert r.json()["other_mobiles"] == ["13900000002"]


@pytest.mark.asyncio
@pytest.mark.store
async def test_bad_customer_edits_name_the_field_and_write_nothing(
    reception: httpx.AsyncClient,
):
    customer, _ = await register(reception, "")
    url = f"/customers/{customer['id']}"
    etag = (await reception.get(url, headers=ADVISOR)).headers["ETag"]
    before = await _outbox_rows(reception)
    headers = {**ADVISOR, "If-Match": etag}
    for json, field in (
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"mobile": "not a phone"}, "mobile"),
        ({"preferred_channel": "pigeon"}, "preferred_channel"),
        ({"language": "fr"}, "language"),
        ({"contact_consent": None}, "contact_consent"),
        ({"account_kind": "fleet"}, "company"),
        ({"other_mobiles": ["13800000000"]}, "other_mobiles"),
        ({"other_mobiles": [f"139000000{i}" for i in range(10, 16)]}, "other_mobiles"),
        ({"mobile": None, "other_mobiles": ["13900000003"]}, "mobile"),
        ({"colour": "red"}, "colour"),
    ):
        assert_problem(await reception.patch(url, headers=headers, json=json), 422, field)
    assert_problem(
        await reception.patch(
            url, headers={**headers, "Content-Type": "application/json"}, content=b"{"
        ),
        400,
    )
    assert_problem(
        await reception.patch(url, headers={**auth("foreman"), "If-Match": etag}, json={}), 403
    )
    other = {**auth("advisor", "BR02"), "If-Match": etag}
    assert_problem(await reception.patch(url, headers=other, json={"name": "X"}), 404)
    after = await reception.get(url, headers=ADVISOR)
    assert after.headers["ETag"] == etag and after.json()["name"] == customer["name"]
    assert await _outbox_rows(reception) == before
    assert await _phones(reception, customer["id"]) == {"13800000000"}


@pytest.mark.asyncio
@pytest.mark.store
async def test_customer_edits_and_owner_changes_reach_nats(
    reception: httpx.AsyncClient, nats_server: NatsServer
):
    seller, vehicle = await register(reception, "", name="李雷")
    buyer, _ = await register(reception, "", name="韩梅梅")
    async with (
        _events(nats_server.url, "reception.customer.updated.v1") as updated,
        _events(nats_server.url, "reception.vehicle.owner_changed.v1") as owner_changed,
    ):
        url = f"/customers/{buyer['id']}"
        etag = (await reception.get(url, headers=ADVISOR)).headers["ETag"]
        r = await reception.patch(
            url,
            headers={**ADVISOR, "If-Match": etag},
            json={"language": "en", "contact_consent": False, "other_mobiles": ["13700000000"]},
        )
        assert r.status_code == 200, r.text
        r = await reception.post(
            f"/vehicles/{vehicle['id']}/owner",
            headers={**ADVISOR, "Idempotency-Key": "owner-1"},
            json={"customer_id": buyer["id"], "reason": "二手车过户"},
        )
        assert r.status_code == 201, r.text
        # a retry is the first answer and publishes nothing more; a refused change nothing
        retry = await reception.post(
            f"/vehicles/{vehicle['id']}/owner",
            headers={**ADVISOR, "Idempotency-Key": "owner-1"},
            json={"customer_id": buyer["id"], "reason": "二手车过户"},
        )
        assert retry.status_code == 201 and retry.headers.get("Idempotent-Replayed") == "true"
        assert_problem(
            await reception.post(
                f"/vehicles/{vehicle['id']}/owner",
                headers=ADVISOR,
                json={"customer_id": buyer["id"]},
            ),
            409,
        )

        r = await reception.post(
            f"/customers/{buyer['id']}/mobiles", headers=ADVISOR, json={"mobile": "13600000000"}
        )
        assert r.status_code == 200, r.text

        async def both_arrived() -> bool:
            return len(updated) >= 1 and len(owner_changed) >= 1

        await eventually(both_arrived, what="the customer and owner events")
        # the relay publishes in commit order: a later event proves nothing more is coming
        r = await reception.patch(
            url,
            headers={
                **ADVISOR,
                "If-Match": (await reception.get(url, headers=ADVISOR)).headers["ETag"],
            },
            json={"name": "韩梅"},
        )
        assert r.status_code == 200, r.text

        async def sentinel() -> bool:
            return any(e["data"]["customer"]["name"] == "韩梅" for e in updated)

        await eventually(sentinel, what="the last customer edit")

    assert len(updated) == 3 and len(owner_changed) == 1, (updated, owner_changed)
    assert updated[1]["data"]["mobiles"] == ["13800000000", "13700000000", "13600000000"]
    first = updated[0]
    assert first["subject"] == buyer["id"]
    assert first["data"]["customer"]["language"] == "en"
    assert first["data"]["customer"]["contact_consent"] is False
    assert first["data"]["mobiles"] == ["13800000000", "13700000000"]
    assert first["data"]["updated_by"] and first["data"]["branch"] == "BR01"
    change = owner_changed[0]
    assert change["subject"] == vehicle["id"]
    assert change["data"]["vehicle"]["vin"] == vehicle["vin"]
    assert change["data"]["previous_customer_id"] == seller["id"]
    assert change["data"]["customer_id"] == buyer["id"]
    assert change["data"]["reason"] == "二手车过户"


async def _names_found(client: httpx.AsyncClient, name: str) -> list[str]:
    found, cursor = [], None
    while True:
        params = {"name": name, "limit": "2", **({"cursor": cursor} if cursor else {})}
        r = await client.get("/search", headers=ADVISOR, params=params)
        assert r.status_code == 200, r.text
        found += [hit["vehicle_id"] for hit in r.json()["items"]]
        if not (cursor := r.json()["next_cursor"]):
            return found


@pytest.mark.asyncio
@pytest.mark.store
async def test_the_surname_search_follows_name_edits_and_owner_changes(
    reception: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
):
    from services.reception import desk

    wang, wang_car = await register(reception, "", name="王芳")
    li, li_car = await register(reception, "", name="李雷")
    _, zhang_car = await register(reception, "", name="张伟")
    assert await _names_found(reception, "王") == [wang_car["id"]]
    # 李雷 becomes 王雷: his car is found under 王, newest first, and no longer under 李
    url = f"/customers/{li['id']}"
    etag = (await reception.get(url, headers=ADVISOR)).headers["ETag"]
    r = await reception.patch(url, headers={**ADVISOR, "If-Match": etag}, json={"name": "王雷"})
    assert r.status_code == 200, r.text
    assert await _names_found(reception, "王") == [li_car["id"], wang_car["id"]]
    assert await _names_found(reception, "李") == []
    # 张伟's car passes to 王芳: found under 王, no longer under 张
    r = await reception.post(
        f"/vehicles/{zhang_car['id']}/owner", headers=ADVISOR, json={"customer_id": wang["id"]}
    )
    assert r.status_code == 201, r.text
    expected = [zhang_car["id"], li_car["id"], wang_car["id"]]
    assert await _names_found(reception, "王") == expected
    assert await _names_found(reception, "张") == []
    # a longer prefix gives the same pages whether it is read from the name index or
    # walked within the surname's vehicles
    rare = await _names_found(reception, "王芳")
    monkeypatch.setattr(desk, "COMMON_PREFIX", 1)
    assert await _names_found(reception, "王芳") == rare == [zhang_car["id"], wang_car["id"]]
