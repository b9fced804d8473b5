"""Dates and times in queries, paths and bodies of every service: ISO strings only, within
the years the workshop can mean, and a 422 naming the field instead of a 500."""

import base64
import importlib
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, get_args, get_origin

import httpx
import orjson
import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlmodel import func, select

from services.records.webhook_models import PaymentIn, PriceListIn
from shared import types
from tests.harness import NatsServer, auth
from tests.test_bad_input import _client, assert_problem

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

EVERYONE = auth(
    ["manager", "advisor", "foreman", "technician", "records_clerk", "followup_agent", "erp"]
)
SOON = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0).isoformat()
ANY = str(uuid.uuid4())
DAY = SOON[:10]

# Out of range, or not an ISO string: pydantic's lax mode took numbers (and strings of
# digits) as seconds since 1970.
BAD_DAYS = ["0001-01-01", "9999-12-31", "1899-12-31", "2200-01-01", "0" * 30, "20261201", "0"]
BAD_INSTANTS = [
    "9999-12-31T23:59:00Z",
    "0001-01-01T00:00:00+08:00",
    "1899-12-31T23:59:59Z",
    (datetime.now(UTC) + timedelta(days=3)).replace(tzinfo=None).isoformat(),  # no offset
    "0" * 30,
    "1796083200",
    DAY,
]


async def rows(client: httpx.AsyncClient) -> dict[str, int]:
    """Every table's row count: a refused request writes nothing anywhere."""
    runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]
    counted = {}
    async with runtime.db.reader() as session:
        for table in runtime.spec.metadata.sorted_tables:
            counted[table.name] = (
                await session.exec(select(func.count()).select_from(table))
            ).one()
    return counted


# (method, path, where the date goes: "query", "json" or "path", the field, other input)
CASES: dict[str, list[tuple[str, str, str, str, dict[str, Any]]]] = {
    "records": [
        *[
            ("GET", f"/reports/kpis{suffix}", "query", "on", {"period": period})
            for suffix in ("", ".csv", ".pdf", ".xlsx", ".html")
            for period in ("day", "week", "month")
        ],
        ("GET", "/reports/kpis/revenue_total/items", "query", "on", {"period": "day"}),
        ("GET", "/reports/kpis", "query", "from_on", {"period": "custom", "to_on": DAY}),
        (
            "GET",
            "/reports/kpis.pdf",
            "query",
            "to_on",
            {"period": "custom", "from_on": DAY},
        ),
        ("GET", "/erp/part-prices/P-1", "query!", "at", {}),
        ("POST", f"/lending/loans/{ANY}/approve", "json", "due_on", {}),
    ],
    "workorders": [
        ("GET", "/dispatch/day", "query", "on", {}),
        ("GET", "/technicians/productivity", "query", "on", {}),
        ("POST", f"/repair-orders/{ANY}/promise", "json!", "promised_at", {"reason": "parts"}),
        ("PUT", f"/jobs/{ANY}/assignment", "json!", "planned_start_at", {"technician_id": "t-1"}),
        ("POST", f"/parts/{ANY}/transitions", "json!", "eta_at", {"to": "ordered"}),
    ],
    "followup": [
        ("GET", "/kpis", "query", "from_on", {"to_on": DAY}),
        ("GET", "/kpis", "query", "to_on", {"from_on": DAY}),
        ("POST", f"/visits/{ANY}/calls", "json!", "call_back_at", {"result": "call_back"}),
    ],
    "reception": [
        ("POST", "/appointments", "json!", "starts_at", {"vehicle_id": ANY, "planned_hours": 1}),
        ("POST", f"/appointments/{ANY}/reschedule", "json!", "starts_at", {}),
        ("GET", "/appointments", "query", "day", {}),
        ("GET", "/appointments/show-rate", "query", "start_on", {"end_on": DAY}),
        ("GET", "/appointments/show-rate", "query", "end_on", {"start_on": DAY}),
        ("GET", "/capacity/{}", "path", "day", {}),
        ("PUT", "/capacity/{}", "path", "day", {"hours": 8}),
        ("POST", "/estimates", "json!", "promised_at", {"intake_id": ANY, "lines": []}),
        ("PUT", f"/estimates/{ANY}", "json!", "promised_at", {"lines": []}),
    ],
}


@pytest.mark.parametrize("service", list(CASES))
async def test_dates_out_of_range_or_not_iso_are_refused_naming_the_field(
    service: str, database_url: str, nats_server: NatsServer
) -> None:
    async with _client(service, database_url, nats_server) as client:
        before = await rows(client)
        for method, path, where, field, other in CASES[service]:
            # "!": a time of day, not a day.
            values = BAD_INSTANTS if where.endswith("!") else BAD_DAYS
            for value in values:
                headers = {**EVERYONE, "If-Match": '"1"'}
                if where.startswith("query"):
                    r = await client.request(
                        method, path, params={**other, field: value}, headers=headers
                    )
                elif where.startswith("json"):
                    r = await client.request(
                        method, path, json={**other, field: value}, headers=headers
                    )
                else:
                    r = await client.request(
                        method, path.format(value), json=other or None, headers=headers
                    )
                try:
                    assert_problem(r, 422, field)
                except AssertionError as exc:
                    raise AssertionError(f"{method} {path} {field}={value}: {exc}") from exc
        assert await rows(client) == before
        # The first and the last day taken are answered (or refused by the route's own
        # rules, such as a range's order): their arithmetic stays in range.
        for method, path, where, field, other in CASES[service]:
            if method != "GET" or where.endswith("!"):
                continue
            for value in ("1900-01-01", "2199-12-31"):
                params = {**other, field: value} if where == "query" else other
                r = await client.get(path.format(value), params=params, headers=EVERYONE)
                assert r.status_code < 500, f"{path} {field}={value}: {r.text}"


async def test_a_json_number_is_not_a_date(database_url: str, nats_server: NatsServer) -> None:
    async with _client("reception", database_url, nats_server) as client:
        before = await rows(client)
        for starts_at in (0, 1796083200, 1.5e9, True):
            r = await client.post(
                "/appointments",
                json={"vehicle_id": ANY, "planned_hours": 1, "starts_at": starts_at},
                headers=EVERYONE,
            )
            assert_problem(r, 422, "starts_at")
        assert await rows(client) == before
        # The same dates as ISO strings, within range, still pass validation (404-free: the
        # day's appointments are simply none).
        r = await client.get("/appointments", params={"day": SOON[:10]}, headers=EVERYONE)
        assert r.status_code == 200, r.text


# --- every route ---------------------------------------------------------------------

# Bodies a route parses itself (signed ERP messages), out of FastAPI's sight.
PARSED_BY_HAND = {"records": [PriceListIn, PaymentIn]}


def _dates(annotation: Any, metadata: list[Any], where: str, found: list[tuple[str, bool]]):
    """Each date or datetime inside `annotation`, and whether it is a Day or an Instant."""
    if annotation in (date, datetime):
        checks = {getattr(m, "func", None) for m in metadata}
        found.append((where, {types._iso_day, types._iso_instant} & checks != set()))
    elif get_origin(annotation) is Annotated:
        _dates(get_args(annotation)[0], list(annotation.__metadata__), where, found)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items():
            _dates(field.annotation, field.metadata, f"{where}.{name}", found)
    else:
        for arg in get_args(annotation):
            _dates(arg, [], where, found)


def _route_dates(dependant: Any, where: str, found: list[tuple[str, bool]]) -> None:
    for param in [
        *dependant.path_params,
        *dependant.query_params,
        *dependant.header_params,
        *dependant.body_params,
    ]:
        info = param.field_info
        _dates(info.annotation, info.metadata, f"{where} {param.name}", found)
    for sub in dependant.dependencies:
        _route_dates(sub, where, found)


@pytest.mark.parametrize("service", list(CASES))
async def test_every_date_a_request_carries_is_a_day_or_an_instant(service: str) -> None:
    app = importlib.import_module(f"services.{service}.main").create_app()
    found: list[tuple[str, bool]] = []
    for route in app.routes:
        if isinstance(route, APIRoute):
            where = f"{'/'.join(sorted(route.methods or ()))} {route.path}"
            _route_dates(route.dependant, where, found)
    for model in PARSED_BY_HAND.get(service, []):
        _dates(model, [], model.__name__, found)
    assert len(found) >= len(CASES[service]) // 4  # the walk sees the dates it should
    assert [where for where, checked in found if not checked] == []


# A list endpoint with a cursor in each service.
LISTS = {
    "reception": "/customers",
    "workorders": "/repair-orders",
    "followup": "/complaints",
    "records": "/reports/runs",
}


@pytest.mark.parametrize("service", list(LISTS))
async def test_a_made_up_cursor_is_refused_whatever_time_it_holds(
    service: str, database_url: str, nats_server: NatsServer
) -> None:
    async with _client(service, database_url, nats_server) as client:
        for at in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "2026-12-01T08:00"):
            raw = orjson.dumps([at, str(uuid.uuid4())])
            cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
            r = await client.get(LISTS[service], params={"cursor": cursor}, headers=EVERYONE)
            assert_problem(r, 422, "cursor")
