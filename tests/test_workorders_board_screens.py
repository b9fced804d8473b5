"""Registered status-board screens on a real database: the foreman registers a TV, its
token opens its page and stream (its branch, its variant only), revoking or re-pairing it
cuts it off at once (an open stream is told `revoked` and ends), and the secret is shown
once and kept nowhere."""

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text, update

from services.workorders.board import hub_for
from services.workorders.config import Settings
from services.workorders.main import create_app
from services.workorders.models import BoardScreen
from services.workorders.screens import ScreenIssued
from shared.events import utcnow
from shared.service import Runtime
from tests.harness import NatsServer, auth, eventually
from tests.test_bad_input import assert_problem
from tests.test_workorders_api import Workorders, approved

pytestmark = [pytest.mark.store]

FOREMAN = auth("foreman")
WITHDRAWN = "this screen's access was withdrawn"


@asynccontextmanager
async def running(
    database_url: str, nats_url: str, check_seconds: float
) -> AsyncIterator[Workorders]:
    settings = Settings(
        database_url=database_url,
        nats_url=nats_url,
        board_poll_interval=0.05,
        board_heartbeat_seconds=0.3,
        board_screen_check_seconds=check_seconds,
        promise_recheck_delay=3600,
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client,
    ):
        yield Workorders(client, app.state.runtime.db, nats_url)


@pytest_asyncio.fixture
async def wo(database_url: str, nats_server: NatsServer) -> AsyncIterator[Workorders]:
    # Re-checks far apart: a revocation made through this process must end a stream at
    # once, not at the next check.
    async with running(database_url, nats_server.url, check_seconds=60) as app:
        yield app


def runtime_of(wo: Workorders) -> Runtime:
    return wo.client._transport.app.state.runtime  # type: ignore[attr-defined]


async def register(
    wo: Workorders,
    name: str = "Workshop TV 1",
    variant: str = "board",
    lang: str = "zh-CN",
    headers: dict[str, str] = FOREMAN,
) -> dict[str, Any]:
    r = await wo.client.post(
        "/board/screens", json={"name": name, "variant": variant, "lang": lang}, headers=headers
    )
    assert r.status_code == 201, r.text
    return {**r.json(), "etag": r.headers["ETag"]}


async def rows(wo: Workorders, statement: str) -> list[Any]:
    async with wo.db.engine.connect() as conn:
        return list((await conn.execute(text(statement))).all())


def bearer(screen_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {screen_token}"}


async def joined(wo: Workorders, screen_id: str) -> bool:
    """Whether a stream of the screen is connected to this process's feed."""
    hub = hub_for(runtime_of(wo))
    return any(
        s.registered is not None and str(s.registered.id) == screen_id
        for screens in hub.screens.values()
        for s in screens
    )


def connected(wo: Workorders, screen_id: str) -> Callable[[], Awaitable[bool]]:
    return lambda: joined(wo, screen_id)


def has_board(wo: Workorders, screen_id: str) -> Callable[[], Awaitable[bool]]:
    """Whether the screen's stream has sent its board: it is shown online only after."""

    async def check() -> bool:
        r = await wo.client.get("/board/screens", headers=FOREMAN)
        return any(s["id"] == screen_id and s["online"] for s in r.json()["items"])

    return check


def open_stream(wo: Workorders, screen: dict[str, Any], lounge: bool = False) -> asyncio.Task:
    """The screen's stream over HTTP; the in-process transport answers once it ends."""
    path = "/board/lounge/events" if lounge else "/board/events"
    return asyncio.create_task(
        wo.client.get(path, params={"access_token": screen["token"]}, timeout=30)
    )


def sse_events(body: str) -> list[tuple[str, str]]:
    found = []
    for block in body.split("\n\n"):
        fields = dict(line.partition(": ")[::2] for line in block.splitlines() if ": " in line)
        if "event" in fields:
            found.append((fields["event"], fields.get("data", "")))
    return found


@pytest.mark.asyncio
async def test_a_registered_screen_opens_its_page_and_stream(wo: Workorders):
    await wo.consent(approved())
    screen = await register(wo, lang="en")
    assert screen["token"].startswith(f"scr_{uuid.UUID(screen['id']).hex}_")
    assert screen["url"].startswith("/board?access_token=scr_") and "lang=en" in screen["url"]
    assert screen["revoked_at"] is None and screen["online"] is False
    assert "token_hash" not in screen

    page = await wo.client.get(screen["url"])
    assert page.status_code == 200, page.text
    assert "Workshop board" in page.text and "沪A12345" in page.text and "advisor-zhao" in page.text
    cards = await wo.client.get("/board/cards", headers=bearer(screen["token"]))
    assert cards.status_code == 200 and len(cards.json()["cards"]) == 1
    font = await wo.client.get("/board/font.ttf", params={"access_token": screen["token"]})
    assert font.status_code == 200

    # Its stream starts with the cards, and marks the screen as seen (the ETag stays).
    stream = open_stream(wo, screen)
    await eventually(connected(wo, screen["id"]), timeout=5, what="stream connected")

    async def online() -> dict[str, Any] | None:
        r = await wo.client.get("/board/screens", headers=FOREMAN)
        [listed] = [s for s in r.json()["items"] if s["id"] == screen["id"]]
        return listed if listed["online"] else None

    listed = await eventually(online, timeout=5, what="screen shown online")
    assert listed["last_seen_at"] is not None and listed["version"] == screen["version"]
    r = await wo.client.delete(
        f"/board/screens/{screen['id']}", headers={**FOREMAN, "If-Match": screen["etag"]}
    )
    assert r.status_code == 204, r.text
    body = (await asyncio.wait_for(stream, 5)).text
    assert [name for name, _ in sse_events(body)][:1] == ["snapshot"]


@pytest.mark.asyncio
async def test_a_screen_opens_only_its_variant(wo: Workorders):
    await wo.consent(approved())
    lounge = await register(wo, name="Lounge TV", variant="lounge")
    board = await register(wo, name="Workshop TV")
    assert lounge["url"].startswith("/board/lounge?access_token=")
    # The lounge's token never opens the board with names, in the URL or as a header.
    for path in ("/board", "/board/events", "/board/cards"):
        assert_problem(await wo.client.get(path, params={"access_token": lounge["token"]}), 403)
        assert_problem(await wo.client.get(path, headers=bearer(lounge["token"])), 403)
    page = await wo.client.get(lounge["url"])
    assert page.status_code == 200 and "沪A***45" in page.text and "advisor-zhao" not in page.text
    # Nor does the workshop board's token open the lounge (each TV shows what it is for).
    for path in ("/board/lounge", "/board/lounge/events"):
        assert_problem(await wo.client.get(path, params={"access_token": board["token"]}), 403)


@pytest.mark.asyncio
async def test_a_screen_token_opens_nothing_but_the_board(wo: Workorders):
    screen = await register(wo)
    for method, path in [
        ("GET", "/repair-orders"),
        ("GET", "/board/screens"),
        ("POST", "/board/screens"),
        ("DELETE", f"/board/screens/{screen['id']}"),
    ]:
        r = await wo.client.request(
            method, path, headers=bearer(screen["token"]), json={"name": "x", "variant": "board"}
        )
        body = assert_problem(r, 401)
        assert "status board" in body["detail"]
    # Something shaped like one but not one: 401 too, never 500.
    for bad in ("scr_", "scr_nothex_x", f"scr_{uuid.uuid4().hex}_guess", screen["token"] + "x"):
        assert_problem(await wo.client.get("/board/events", params={"access_token": bad}), 401)
        assert_problem(await wo.client.get("/repair-orders", headers=bearer(bad)), 401)


@pytest.mark.asyncio
async def test_a_revoked_screen_is_refused_with_the_reason(wo: Workorders):
    screen = await register(wo, lang="en")
    other = await register(wo, name="Workshop TV 2")
    r = await wo.client.delete(f"/board/screens/{screen['id']}", headers=FOREMAN)
    assert r.status_code == 204, r.text
    for response in (
        await wo.client.get("/board/events", params={"access_token": screen["token"]}),
        await wo.client.get("/board/cards", headers=bearer(screen["token"])),
    ):
        assert assert_problem(response, 401)["detail"] == WITHDRAWN
    # The TV reloading its page sees the message in its language, not JSON.
    page = await wo.client.get(screen["url"])
    assert page.status_code == 401 and page.headers["content-type"].startswith("text/html")
    assert "This screen's access was withdrawn" in page.text and "沪A" not in page.text
    # The other screen is untouched.
    assert (await wo.client.get(other["url"])).status_code == 200

    # Revoking again changes nothing; the screen stays listed with who revoked it when.
    again = await wo.client.delete(f"/board/screens/{screen['id']}", headers=FOREMAN)
    assert again.status_code == 204
    r = await wo.client.get("/board/screens", headers=FOREMAN)
    listed = {s["id"]: s for s in r.json()["items"]}
    assert listed[screen["id"]]["revoked_at"] is not None
    assert listed[screen["id"]]["revoked_by"].startswith("dev-foreman")
    assert listed[other["id"]]["revoked_at"] is None
    # A revoked screen is not re-paired: the TV is registered again.
    assert_problem(
        await wo.client.post(f"/board/screens/{screen['id']}/token", headers=FOREMAN), 409
    )


@pytest.mark.asyncio
async def test_a_stale_if_match_does_not_revoke(wo: Workorders):
    screen = await register(wo)
    r = await wo.client.post(f"/board/screens/{screen['id']}/token", headers=FOREMAN)
    assert r.status_code == 200, r.text
    stale = await wo.client.delete(
        f"/board/screens/{screen['id']}", headers={**FOREMAN, "If-Match": screen["etag"]}
    )
    assert_problem(stale, 412)
    assert (await wo.client.get(r.json()["url"])).status_code == 200  # still on
    current = await wo.client.get(f"/board/screens/{screen['id']}", headers=FOREMAN)
    r = await wo.client.delete(
        f"/board/screens/{screen['id']}", headers={**FOREMAN, "If-Match": current.headers["ETag"]}
    )
    assert r.status_code == 204


@pytest.mark.asyncio
async def test_a_retried_re_pairing_answers_a_token_again(wo: Workorders):
    """The first answer's secret is kept nowhere: a retry of the same key (If-Match as
    first sent) answers the schema's shape with another new token, and only that one works."""
    screen = await register(wo)
    url = f"/board/screens/{screen['id']}/token"
    headers = {**FOREMAN, "Idempotency-Key": "re-pair-1", "If-Match": screen["etag"]}
    first = await wo.client.post(url, headers=headers)
    assert first.status_code == 200, first.text
    retry = await wo.client.post(url, headers=headers)
    assert retry.status_code == 200, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    again = ScreenIssued.model_validate(retry.json())
    assert str(again.id) == screen["id"] and again.token != first.json()["token"]
    assert retry.headers["ETag"] == f'"{again.version}"'
    assert (await wo.client.get(first.json()["url"])).status_code == 401
    assert (await wo.client.get(again.url)).status_code == 200
    # The same key with another body is still refused, and changes nothing.
    assert_problem(await wo.client.post(url, headers=headers, json={}), 422, "Idempotency-Key")
    assert (await wo.client.get(again.url)).status_code == 200


@pytest.mark.asyncio
async def test_a_new_token_replaces_the_old_one_at_once(wo: Workorders):
    screen = await register(wo)
    old_stream = open_stream(wo, screen)
    await eventually(connected(wo, screen["id"]), timeout=5, what="stream connected")
    started = time.monotonic()
    r = await wo.client.post(f"/board/screens/{screen['id']}/token", headers=FOREMAN)
    assert r.status_code == 200, r.text
    fresh = r.json()
    assert fresh["id"] == screen["id"] and fresh["token"] != screen["token"]
    # The stream opened with the old token is told and ends now, not at the next check.
    body = (await asyncio.wait_for(old_stream, 5)).text
    assert time.monotonic() - started < 5
    assert sse_events(body)[-1][0] == "revoked"
    body = assert_problem(
        await wo.client.get("/board/events", params={"access_token": screen["token"]}), 401
    )
    assert body["detail"] == "unknown or replaced screen token"
    assert (await wo.client.get(fresh["url"])).status_code == 200


@pytest.mark.asyncio
async def test_the_open_stream_of_a_revoked_screen_is_told_and_ends(wo: Workorders):
    await wo.consent(approved())
    screen = await register(wo, variant="lounge")
    other = await register(wo, name="Lounge TV 2", variant="lounge")
    stream = open_stream(wo, screen, lounge=True)
    other_stream = open_stream(wo, other, lounge=True)
    for s in (screen, other):
        # Joined but not yet sent its board, a withdrawn screen gets none: wait for it.
        await eventually(has_board(wo, s["id"]), timeout=5, what="stream sent its board")
    started = time.monotonic()
    r = await wo.client.delete(f"/board/screens/{screen['id']}", headers=FOREMAN)
    assert r.status_code == 204, r.text
    body = (await asyncio.wait_for(stream, 5)).text
    assert time.monotonic() - started < 5  # the next re-check would be a minute away
    events = sse_events(body)
    assert events[0][0] == "snapshot" and events[-1] == ("revoked", f'{{"detail":"{WITHDRAWN}"}}')
    # The other screen's stream goes on.
    assert not other_stream.done() and await joined(wo, other["id"])
    await wo.client.delete(f"/board/screens/{other['id']}", headers=FOREMAN)
    assert sse_events((await asyncio.wait_for(other_stream, 5)).text)[-1][0] == "revoked"


@pytest.mark.asyncio
async def test_a_revocation_through_another_replica_ends_the_stream_at_the_next_check(
    database_url: str, nats_server: NatsServer
):
    async with running(database_url, nats_server.url, check_seconds=0.2) as wo:
        screen = await register(wo)
        stream = open_stream(wo, screen)
        await eventually(connected(wo, screen["id"]), timeout=5, what="stream connected")
        # What another replica's commit leaves behind: the row, and no word to this process.
        async with wo.db.engine.begin() as conn:
            await conn.execute(
                update(BoardScreen).values(revoked_at=utcnow(), revoked_by="elsewhere")
            )
        body = (await asyncio.wait_for(stream, 5)).text
        assert sse_events(body)[-1][0] == "revoked"


@pytest.mark.asyncio
async def test_screens_belong_to_their_branch_and_to_the_foreman(wo: Workorders):
    screen = await register(wo)
    elsewhere = auth("foreman", branch="BR02")
    r = await wo.client.get("/board/screens", headers=elsewhere)
    assert r.status_code == 200 and r.json()["items"] == []
    for method, path in [
        ("GET", f"/board/screens/{screen['id']}"),
        ("DELETE", f"/board/screens/{screen['id']}"),
        ("POST", f"/board/screens/{screen['id']}/token"),
    ]:
        assert_problem(await wo.client.request(method, path, headers=elsewhere), 404)
    assert (await wo.client.get(screen["url"])).status_code == 200  # still on

    # The screen shows its own branch's board only.
    other_branch = await register(wo, name="BR02 TV", headers=elsewhere)
    await wo.consent(approved())
    r = await wo.client.get("/board/cards", headers=bearer(other_branch["token"]))
    assert r.status_code == 200 and r.json()["cards"] == []

    # Managers and admins may register; a technician, an advisor or a screen may not.
    await register(wo, name="Manager's TV", headers=auth("manager"))
    await register(wo, name="Admin's TV", headers=auth("admin"))
    for role in ("technician", "advisor", "screen"):
        r = await wo.client.post(
            "/board/screens", json={"name": "TV", "variant": "board"}, headers=auth(role)
        )
        assert_problem(r, 403)
        assert_problem(await wo.client.get("/board/screens", headers=auth(role)), 403)
        assert_problem(
            await wo.client.delete(f"/board/screens/{screen['id']}", headers=auth(role)), 403
        )
    assert_problem(await wo.client.get("/board/screens"), 401)


@pytest.mark.asyncio
async def test_bad_input_names_the_field_and_writes_nothing(wo: Workorders):
    for body, field in [
        ({"name": "", "variant": "board"}, "name"),
        ({"name": "   ", "variant": "board"}, "name"),
        ({"name": "x" * 81, "variant": "board"}, "name"),
        ({"variant": "board"}, "name"),
        ({"name": "TV", "variant": "kiosk"}, "variant"),
        ({"name": "TV"}, "variant"),
        ({"name": "TV", "variant": "board", "lang": "fr"}, "lang"),
        ({"name": "TV", "variant": "board", "token": "scr_mine"}, "token"),
    ]:
        assert_problem(
            await wo.client.post("/board/screens", json=body, headers=FOREMAN), 422, field
        )
    assert_problem(
        await wo.client.get("/board/screens/not-a-uuid", headers=FOREMAN), 422, "screen_id"
    )
    assert_problem(await wo.client.get("/board/screens?limit=0", headers=FOREMAN), 422, "limit")
    assert_problem(await wo.client.delete(f"/board/screens/{uuid.uuid4()}", headers=FOREMAN), 404)
    assert await rows(wo, "SELECT id FROM board_screen") == []
    # An 80-character name is fine, and its spaces around are dropped.
    screen = await register(wo, name=" " + "x" * 80 + " ")
    assert screen["name"] == "x" * 80


@pytest.mark.asyncio
async def test_the_secret_is_shown_once_and_kept_nowhere(
    wo: Workorders, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    headers = {**FOREMAN, "Idempotency-Key": "register-tv-1"}
    body = {"name": "Workshop TV 1", "variant": "board", "lang": "en"}
    first = await wo.client.post("/board/screens", json=body, headers=headers)
    assert first.status_code == 201, first.text
    lost = first.json()
    # A retry registers no second screen and cannot get the lost secret again (it is kept
    # nowhere): it answers the same shape, the same screen with a new token, and the lost
    # one stops working.
    retry = await wo.client.post("/board/screens", json=body, headers=headers)
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    screen = ScreenIssued.model_validate(retry.json()).model_dump(mode="json")
    assert screen["id"] == lost["id"] and screen["token"] != lost["token"]
    assert retry.headers["ETag"] == f'"{screen["version"]}"' != first.headers["ETag"]
    assert len(await rows(wo, "SELECT id FROM board_screen")) == 1
    assert (await wo.client.get(lost["url"])).status_code == 401
    secret = screen["token"].split("_", 2)[2]

    # Use it, list it, re-pair and revoke it: the token shows in no list and no log line.
    assert (await wo.client.get(screen["url"])).status_code == 200
    listed = await wo.client.get("/board/screens", headers=FOREMAN)
    one = await wo.client.get(f"/board/screens/{screen['id']}", headers=FOREMAN)
    repaired = await wo.client.post(f"/board/screens/{screen['id']}/token", headers=FOREMAN)
    assert (await wo.client.get(screen["url"])).status_code == 401
    await wo.client.delete(f"/board/screens/{screen['id']}", headers=FOREMAN)
    new_secret = repaired.json()["token"].split("_", 2)[2]
    for text_ in (listed.text, one.text, caplog.text):
        assert secret not in text_ and new_secret not in text_
    assert all("token" not in s for s in listed.json()["items"]) and "token" not in one.json()
    assert "token_hash" not in listed.text
    assert "scr_" not in caplog.text
    # Stored: the SHA-256 of the secret, never the secret (nor in the idempotency record).
    [(stored_hash,)] = await rows(wo, "SELECT token_hash FROM board_screen")
    assert stored_hash == hashlib.sha256(new_secret.encode()).hexdigest()
    [(record,)] = await rows(wo, "SELECT body FROM idempotency_record")
    assert secret not in str(record) and screen["id"] in str(record)
