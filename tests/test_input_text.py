"""Text from requests of every service: search input matches only itself, and control
characters (NUL, C0 and C1, bidi overrides) are refused naming the field, in bodies,
queries, paths and uploaded files' names, with nothing written."""

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import NatsServer, auth
from tests.test_bad_input import _client, assert_problem, reception  # noqa: F401
from tests.test_input_dates import rows
from tests.test_records_files import PNG, RecordsClient, staged_leftovers, stored_blobs

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

ADVISOR = auth("advisor")
EVERYONE = auth(
    ["manager", "advisor", "foreman", "technician", "records_clerk", "followup_agent", "erp"]
)
ANY = str(uuid.uuid4())
COMPLAINT = {"source": "call", "severity": "minor", "category": "price", "description": "账单"}


async def test_wildcards_in_a_customer_search_match_only_themselves(
    reception: httpx.AsyncClient,  # noqa: F811
) -> None:
    names = ["王芳", "李雷", "_李", "%折扣", "\\王"]
    for name in names:
        r = await reception.post("/customers", headers=ADVISOR, json={"name": name})
        assert r.status_code == 201, r.text

    async def found(q: str) -> list[str]:
        r = await reception.get("/customers", params={"q": q}, headers=ADVISOR)
        assert r.status_code == 200, r.text
        return sorted(c["name"] for c in r.json()["items"])

    assert await found("%") == ["%折扣"]
    assert await found("_") == ["_李"]
    assert await found("_李") == ["_李"]
    assert await found("\\") == ["\\王"]
    assert await found("%%") == []
    assert await found("王") == ["王芳"]


# (method, path, JSON body or None, query or None, the field named)
Case = tuple[str, str, Any, dict[str, str] | None, str]
CASES: dict[str, list[Case]] = {
    "reception": [
        ("POST", "/customers", {"name": "王\u0000芳"}, None, "name"),
        ("POST", "/customers", {"name": "photo\u202egpj.exe"}, None, "name"),
        (
            "POST",
            "/intakes",
            {"vehicle_id": ANY, "odometer_km": 1, "concerns": ["ok", "刹车\u0085异响"]},
            None,
            "concerns.1",
        ),
        ("GET", "/customers", None, {"q": "王\u202e"}, "q"),
        ("GET", "/search", None, {"name": "王\t"}, "name"),
        ("GET", "/customers/\u202e", None, None, "path"),
    ],
    "workorders": [
        (
            "PUT",
            f"/jobs/{ANY}/assignment",
            {"technician_id": "t\u202e1", "bay": "B1"},
            None,
            "technician_id",
        ),
        ("GET", "/dispatch/day", None, {"on": "2026-12-01\u0000"}, "on"),
    ],
    "followup": [
        ("POST", "/complaints", {**COMPLAINT, "description": "x\u2066y"}, None, "description"),
        ("POST", "/complaints", {**COMPLAINT, "owner": "a\u001bb"}, None, "owner"),
        ("POST", "/complaints", {**COMPLAINT, "descr\u0000iption": "x"}, None, "body"),
    ],
    "records": [
        ("POST", "/lending/items", {"title": "手册\u0007"}, None, "title"),
        ("GET", "/library/search", None, {"q": "刹车\u0000"}, "q"),
        ("GET", "/library/search", None, {"q": "刹车\n"}, "q"),
    ],
}


async def _refused(client: httpx.AsyncClient, cases: list[Case]) -> None:
    for method, path, body, params, field in cases:
        # Escaped (\u202e) and as raw UTF-8: both are the same JSON string.
        for ascii_only in (True, False):
            content = None if body is None else json.dumps(body, ensure_ascii=ascii_only)
            r = await client.request(
                method,
                path,
                content=content,
                params=params,
                headers={**EVERYONE, "content-type": "application/json", "If-Match": '"1"'},
            )
            try:
                assert_problem(r, 422, field)
            except AssertionError as exc:
                raise AssertionError(f"{method} {path} {body or params}: {exc}") from exc


@pytest.mark.parametrize("service", ["reception", "workorders", "followup"])
async def test_control_characters_are_refused_naming_the_field(
    service: str, database_url: str, nats_server: NatsServer
) -> None:
    async with _client(service, database_url, nats_server) as client:
        before = await rows(client)
        await _refused(client, CASES[service])
        assert await rows(client) == before
        if service == "followup":
            # Line breaks and tabs are text where text has lines.
            notes = {**COMPLAINT, "description": "第一行\r\n第二行\t完"}
            r = await client.post("/complaints", json=notes, headers=EVERYONE)
            assert r.status_code == 201, r.text
            assert r.json()["description"] == notes["description"]


async def test_uploads_and_records_text_refuse_control_characters(
    database_url: str, nats_server: NatsServer, tmp_path: Path
) -> None:
    async with RecordsClient(database_url, nats_server, tmp_path / "files") as client:
        before = await rows(client)
        await _refused(client, CASES["records"])
        name = "photo\u202egpj.exe"  # shows as photoexe.jpg
        r = await client.post("/files", headers=EVERYONE, files={"file": (name, PNG, "image/png")})
        assert_problem(r, 422, "filename")
        r = await client.post(
            "/files",
            params={"filename": name},
            content=PNG,
            headers={**EVERYONE, "content-type": "application/octet-stream"},
        )
        assert_problem(r, 422, "filename")
        assert await rows(client) == before
        assert await stored_blobs(client) == [] and staged_leftovers(client) == []
