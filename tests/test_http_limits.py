"""Over-long and oversize requests: a chunked body over the limit, an over-long request
target, header or header section get problem+json 413/414/431 from the app, and what the
HTTP server itself refuses (a target it cannot parse, bytes that are not HTTP) is
problem+json too, in process and from a real uvicorn process."""

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest

from shared.http import MAX_HEADERS_BYTES, MAX_URL_BYTES
from tests.harness import Stack, auth
from tests.test_bad_input import _client as Service
from tests.test_bad_input import assert_problem, counts

pytestmark = [pytest.mark.asyncio]


async def chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    yield b'{"name": "'
    sent = 0
    while sent < total:
        yield b"z" * size
        sent += size
    yield b'"}'


@pytest.mark.store
async def test_a_chunked_body_over_the_limit_is_a_413_and_writes_nothing(database_url, nats_server):
    async with Service("reception", database_url, nats_server) as reception:
        before = await counts(reception)
        # Whatever it claims to be; without Content-Length (Transfer-Encoding: chunked).
        for content_type in ("application/json", "text/plain", "application/x-www-form-urlencoded"):
            r = await reception.post(
                "/customers",
                headers={**auth("advisor"), "content-type": content_type},
                content=chunks(2_000_000),
            )
            body = assert_problem(r, 413)
            assert "bytes" in body["detail"]
        assert await counts(reception) == before
        # A chunked body under the limit is read as usual.
        r = await reception.post(
            "/customers",
            headers={**auth("advisor"), "content-type": "application/json"},
            content=chunks(10, size=10),
        )
        assert r.status_code == 201, r.text


@pytest.mark.store
async def test_over_long_targets_and_headers_are_414_and_431(database_url, nats_server):
    async with Service("workorders", database_url, nats_server) as workorders:
        ok = await workorders.get("/repair-orders?status=draft", headers=auth("foreman"))
        assert ok.status_code == 200, ok.text
        # A target of exactly the limit is taken; one byte more is not.
        at_limit = "/repair-orders?status=draft&x=" + "a" * (MAX_URL_BYTES - 30)
        assert len(at_limit) == MAX_URL_BYTES
        r = await workorders.get(at_limit, headers=auth("foreman"))
        assert r.status_code == 200, r.text
        assert_problem(await workorders.get(at_limit + "a", headers=auth("foreman")), 414)
        long_query = "/repair-orders?status=" + "a" * MAX_URL_BYTES
        assert_problem(await workorders.get(long_query, headers=auth("foreman")), 414)
        assert_problem(
            await workorders.get("/repair-orders/" + "b" * MAX_URL_BYTES, headers=auth("foreman")),
            414,
        )
        one_big = {**auth("foreman"), "x-note": "c" * 9000}
        assert_problem(await workorders.get("/repair-orders", headers=one_big), 431)
        many = {**auth("foreman"), **{f"x-note-{i}": "d" * 4000 for i in range(9)}}
        assert sum(len(k) + len(v) for k, v in many.items()) > MAX_HEADERS_BYTES
        assert_problem(await workorders.get("/repair-orders", headers=many), 431)
        crowd = {**auth("foreman"), **{f"x-n{i}": "e" for i in range(120)}}
        assert_problem(await workorders.get("/repair-orders", headers=crowd), 431)
        # Health checks answer the same way.
        assert_problem(await workorders.get("/healthz?" + "f" * 10_000), 414)


def raw_exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (no client rewrites them) and read the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def assert_raw_problem(answer: tuple[int, dict[str, str], bytes], status: int) -> dict:
    got, headers, body = answer
    assert got == status, (got, headers, body[:200])
    assert headers["content-type"].startswith("application/problem+json"), headers
    problem = orjson.loads(body)
    assert problem["status"] == status and problem["type"].startswith("urn:workshop:problem:")
    return problem


@pytest.mark.e2e
async def test_a_real_service_answers_every_refusal_with_problem_json(tmp_path: Path):
    stack = await asyncio.to_thread(Stack(tmp_path, services=("followup",)).start)
    try:
        port = stack.services["followup"].port
        url = stack.url("followup")
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            r = await client.get("/visits?q=" + "a" * 20_000, headers=auth("followup_agent"))
            assert_problem(r, 414)
            r = await client.get("/healthz", headers={"x-big": "b" * 200_000})
            assert_problem(r, 431)
            r = await client.get("/healthz", headers={"x-big": "b" * 10_000})
            assert_problem(r, 431)
            r = await client.post(
                "/contacts",
                headers={**auth("followup_agent"), "content-type": "application/json"},
                content=chunks(2_000_000),
            )
            assert_problem(r, 413)
            assert (await client.get("/healthz")).status_code == 200
        for request in (
            # 100,000 characters: more than httptools can parse at all (and than httpx
            # sends).
            b"GET /visits?q=" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 300 + b"\r\n",
        ):
            answer = await asyncio.to_thread(raw_exchange, port, request)
            assert answer[0] in (414, 431)
            assert_raw_problem(answer, answer[0])
        garbage = await asyncio.to_thread(raw_exchange, port, b"\x16\x03\x01 not http\r\n\r\n")
        assert_raw_problem(garbage, 400)
        bad_header = await asyncio.to_thread(
            raw_exchange, port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n"
        )
        assert_raw_problem(bad_header, 400)
    finally:
        await asyncio.to_thread(stack.stop)
