"""The technical library: versions, applicability, search ranking, confidentiality,
download log and ETag/If-Match, in process on a real database and NATS."""

import pytest
import pytest_asyncio
from sqlmodel import func, select

from services.records.models import FileReference, LibraryDocument
from tests.harness import NatsServer, auth
from tests.test_bad_input import assert_problem
from tests.test_records_files import JPEG, PDF, PNG, RecordsClient, runtime_of, upload

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

CLERK = auth("records_clerk")
TECH = auth("technician")


@pytest_asyncio.fixture
async def records(database_url: str, nats_server: NatsServer, tmp_path):
    async with RecordsClient(database_url, nats_server, tmp_path / "files") as client:
        yield client


async def add(client, key: str, content: bytes = PDF, **fields) -> dict:
    file_id = (await upload(client, content, name="doc.pdf", role="records_clerk")).json()["id"]
    body = {"title": "Untitled", "category": "manual", "file_id": file_id, **fields}
    r = await client.post(
        "/library/documents", headers={**CLERK, "Idempotency-Key": key}, json=body
    )
    assert r.status_code == 201, r.text
    return r.json()


async def test_versions_etag_and_logged_downloads(records):
    doc = await add(records, "d1", title="Brake caliper service manual", tags=["brakes"])
    url = f"/library/documents/{doc['id']}"
    r = await records.get(url, headers=TECH)
    assert r.status_code == 200 and r.headers["etag"] == doc["etag"] == '"1"'

    new_file = (await upload(records, PNG, role="records_clerk")).json()["id"]
    assert_problem(
        await records.post(f"{url}/versions", headers=CLERK, json={"file_id": new_file}), 428
    )
    assert_problem(
        await records.post(
            f"{url}/versions", headers={**CLERK, "If-Match": '"7"'}, json={"file_id": new_file}
        ),
        412,
    )
    r = await records.post(
        f"{url}/versions",
        headers={**CLERK, "If-Match": doc["etag"], "Idempotency-Key": "v2"},
        json={"file_id": new_file, "note": "2027 update"},
    )
    assert r.status_code == 200, r.text  # answers the document it changed
    assert r.json()["current_version"] == 2
    etag2 = r.headers["etag"]
    assert etag2 != doc["etag"]
    # The stale tablet's edit is refused.
    assert_problem(
        await records.patch(url, headers={**CLERK, "If-Match": doc["etag"]}, json={"title": "x"}),
        412,
    )
    r = await records.patch(
        url, headers={**CLERK, "If-Match": etag2}, json={"tags": ["brakes", "abs"]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == ["brakes", "abs"]

    history = (await records.get(f"{url}/versions", headers=TECH)).json()["items"]
    assert [v["number"] for v in history] == [2, 1]
    current = await records.get(f"{url}/content", headers=TECH)
    assert current.content == PNG
    old = await records.get(f"{url}/content?version=1", headers={**TECH, "Range": "bytes=0-3"})
    assert old.status_code == 206 and old.content == PDF[:4]
    assert_problem(await records.get(f"{url}/content?version=9", headers=TECH), 404)
    log = (await records.get(f"{url}/downloads", headers=CLERK)).json()
    assert [(d["version_number"], d["ranged"]) for d in log["items"]] == [(1, True), (2, False)]
    assert log["next_cursor"] is None
    newest = (await records.get(f"{url}/downloads?limit=1", headers=CLERK)).json()
    assert [d["version_number"] for d in newest["items"]] == [1]
    older = await records.get(
        f"{url}/downloads", params={"cursor": newest["next_cursor"]}, headers=CLERK
    )
    assert [d["version_number"] for d in older.json()["items"]] == [2]
    assert older.json()["next_cursor"] is None
    assert_problem(await records.get(f"{url}/downloads", headers=TECH), 403)

    # Both versions' files are referenced, so never collected.
    async with runtime_of(records).db.reader() as session:
        refs = (await session.exec(select(func.count()).select_from(FileReference))).one()
    assert refs == 2


async def test_search_ranks_title_over_tags_over_text_and_filters(records):
    in_text = await add(records, "a", title="Chassis overview", text="the brake pads wear")
    in_tags = await add(records, "b", title="Wheel overview", tags=["brake"])
    in_title = await add(records, "c", title="Brake pads replacement", category="bulletin")
    await add(records, "d", title="Air conditioning refill", text="refrigerant")
    r = await records.get("/library/search", params={"q": "Brake"}, headers=TECH)
    assert r.status_code == 200, r.text
    ids = [h["document"]["id"] for h in r.json()["items"]]
    assert ids == [in_title["id"], in_tags["id"], in_text["id"]]
    ranks = [h["rank"] for h in r.json()["items"]]
    assert ranks == sorted(ranks, reverse=True)
    r = await records.get(
        "/library/search", params={"q": "brake", "category": "bulletin"}, headers=TECH
    )
    assert [h["document"]["id"] for h in r.json()["items"]] == [in_title["id"]]
    r = await records.get("/library/search", params={"q": "brake pads"}, headers=TECH)
    assert [h["document"]["id"] for h in r.json()["items"]] == [in_title["id"], in_text["id"]]
    r = await records.get("/library/search", params={"q": "nothing-like-this"}, headers=TECH)
    assert r.json() == {"items": [], "next_cursor": None}
    # An edit is searchable at once.
    r = await records.patch(
        f"/library/documents/{in_text['id']}",
        headers={**CLERK, "If-Match": in_text["etag"]},
        json={"text": "coolant"},
    )
    assert r.status_code == 200
    r = await records.get("/library/search", params={"q": "coolant"}, headers=TECH)
    assert [h["document"]["id"] for h in r.json()["items"]] == [in_text["id"]]
    assert_problem(await records.get("/library/search", params={"q": "!!"}, headers=TECH), 422, "q")
    assert_problem(
        await records.get("/library/search", params={"category": "x"}, headers=TECH),
        422,
        "category",
    )


async def test_documents_for_a_vehicle_and_for_op_codes(records):
    golf = await add(
        records,
        "g",
        title="Golf 8 manual",
        applies_to=[{"make": "Volkswagen", "model": "Golf", "year_from": 2020, "year_to": 2024}],
        op_codes=["br-010"],
    )
    all_vw = await add(records, "v", title="VW paint codes", applies_to=[{"make": "volkswagen"}])
    by_vin = await add(
        records,
        "n",
        title="LSV recall",
        applies_to=[{"vin_prefix": "LSVAU2"}],
        op_codes=["RC-77"],
    )
    await add(
        records, "t", title="Toyota manual", applies_to=[{"make": "Toyota"}], op_codes=["BR-010"]
    )

    async def found(path: str, **params) -> set[str]:
        r = await records.get(path, params=params, headers=TECH)
        assert r.status_code == 200, r.text
        return {h["document"]["id"] for h in r.json()["items"]}

    assert await found("/library/for-vehicle", make="VOLKSWAGEN", model="golf", year=2022) == {
        golf["id"],
        all_vw["id"],
    }
    assert await found("/library/for-vehicle", make="Volkswagen", model="Golf", year=2019) == {
        all_vw["id"]
    }
    assert await found("/library/for-vehicle", make="Volkswagen", model="Polo") == {all_vw["id"]}
    assert await found(
        "/library/for-vehicle", make="Volkswagen", model="Golf", year=2022, vin="LSVAU218XN2183294"
    ) == {golf["id"], all_vw["id"], by_vin["id"]}
    assert await found("/library/for-op-codes", op_code=["BR-010", "RC-77"]) == {
        golf["id"],
        by_vin["id"],
        (await _id(records, "Toyota manual")),
    }
    assert await found("/library/for-op-codes", op_code="BR-010", make="Volkswagen") == {golf["id"]}
    # The document now applies to another make: the make filter follows the edit.
    r = await records.patch(
        f"/library/documents/{all_vw['id']}",
        headers={**CLERK, "If-Match": all_vw["etag"]},
        json={"applies_to": [{"make": "Skoda"}]},
    )
    assert r.status_code == 200, r.text
    assert await found("/library/for-vehicle", make="Volkswagen", model="Polo") == set()
    assert await found("/library/for-vehicle", make="skoda") == {all_vw["id"]}
    assert await found("/library/search", q="paint", make="Skoda") == {all_vw["id"]}
    assert await found("/library/search", q="paint", make="Volkswagen") == set()
    assert_problem(await records.get("/library/for-vehicle", headers=TECH), 422, "make")
    assert_problem(await records.get("/library/for-op-codes", headers=TECH), 422, "op_code")
    assert_problem(
        await records.get("/library/for-vehicle", params={"vin": "IO"}, headers=TECH), 422, "vin"
    )


async def _id(client, title: str) -> str:
    r = await client.get("/library/search", params={"q": title}, headers=CLERK)
    return r.json()["items"][0]["document"]["id"]


async def test_confidential_documents_and_branch_scoping(records):
    secret = await add(
        records, "s", title="Immobilizer coding", confidential=True, allowed_roles=["foreman"]
    )
    group = await add(records, "g", title="Group warranty policy", shared=True)
    local = await add(records, "l", title="Branch opening hours")
    for who, expected in (
        (TECH, {group["id"], local["id"]}),
        (auth("foreman"), {secret["id"], group["id"], local["id"]}),  # a named role
        (CLERK, {secret["id"], group["id"], local["id"]}),
        (auth("technician", "BR02"), {group["id"]}),
    ):
        r = await records.get("/library/search", headers=who)
        assert {h["document"]["id"] for h in r.json()["items"]} == expected
    url = f"/library/documents/{secret['id']}"
    assert_problem(await records.get(url, headers=TECH), 403)
    assert_problem(await records.get(f"{url}/content", headers=TECH), 403)
    assert (await records.get(f"{url}/content", headers=auth("foreman"))).content == PDF
    assert_problem(
        await records.get(f"/library/documents/{local['id']}", headers=auth("technician", "BR02")),
        404,
    )
    assert (
        await records.get(
            f"/library/documents/{group['id']}/content", headers=auth("technician", "BR02")
        )
    ).status_code == 200
    # Another branch may read a shared document but not edit it.
    assert_problem(
        await records.patch(
            f"/library/documents/{group['id']}",
            headers={**auth("records_clerk", "BR02"), "If-Match": group["etag"]},
            json={"title": "mine"},
        ),
        403,
    )


async def test_bad_library_input_writes_nothing(records):
    file_id = (await upload(records, JPEG, role="records_clerk")).json()["id"]
    ok = {"title": "T", "category": "manual", "file_id": file_id}
    cases = [
        ({**ok, "category": "novel"}, "category"),
        ({**ok, "title": ""}, "title"),
        ({**ok, "unknown": 1}, "unknown"),
        ({**ok, "file_id": "00000000-0000-0000-0000-000000000000"}, "file_id"),
        ({**ok, "applies_to": [{"model": "Golf"}]}, "applies_to.0"),
        (
            {**ok, "applies_to": [{"make": "VW", "year_from": 2024, "year_to": 2020}]},
            "applies_to.0.year_to",
        ),
        ({**ok, "applies_to": [{"vin_prefix": "IOQ"}]}, "applies_to.0.vin_prefix"),
        ({**ok, "op_codes": ["no spaces"]}, "op_codes.0"),
        ({**ok, "allowed_roles": ["king"]}, "allowed_roles.0"),
    ]
    for body, field in cases:
        assert_problem(
            await records.post("/library/documents", headers=CLERK, json=body), 422, field
        )
    assert_problem(await records.post("/library/documents", headers=TECH, json=ok), 403)
    other_branch_file = (await upload(records, PNG, role="records_clerk", branch="BR02")).json()[
        "id"
    ]
    assert_problem(
        await records.post(
            "/library/documents", headers=CLERK, json={**ok, "file_id": other_branch_file}
        ),
        422,
        "file_id",
    )
    r = await records.post("/library/documents", headers={**CLERK, "Idempotency-Key": "k"}, json=ok)
    assert r.status_code == 201
    again = await records.post(
        "/library/documents", headers={**CLERK, "Idempotency-Key": "k"}, json=ok
    )
    assert again.json()["id"] == r.json()["id"]
    assert_problem(
        await records.post(
            "/library/documents",
            headers={**CLERK, "Idempotency-Key": "k"},
            json={**ok, "title": "U"},
        ),
        422,
        "Idempotency-Key",
    )
    async with runtime_of(records).db.reader() as session:
        assert (await session.exec(select(func.count()).select_from(LibraryDocument))).one() == 1
