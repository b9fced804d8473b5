"""Idempotency-Key: a retried POST gets the first answer and changes nothing twice."""

import importlib
import json
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import BaseModel
from sqlmodel import select

from services.reception.models import IdempotencyRecord, Intake, OutboxEvent
from shared.db import Database
from shared.idempotency import IDEMPOTENCY_MODEL, Idempotency
from tests.flow import valid_vin
from tests.harness import auth
from tests.test_bad_input import assert_problem, counts, reception  # noqa: F401

pytestmark = [pytest.mark.asyncio, pytest.mark.store]


async def test_retry_with_the_same_key_gets_the_first_answer(reception: httpx.AsyncClient):  # noqa: F811
    advisor = auth("advisor", "BR01")
    customer = (await reception.post("/customers", headers=advisor, json={"name": "A"})).json()
    vehicle = (
        await reception.post(
            "/vehicles", headers=advisor, json={"customer_id": customer["id"], "vin": valid_vin()}
        )
    ).json()
    before = await counts(reception)
    payload = {"vehicle_id": vehicle["id"], "odometer_km": 120}
    keyed = {**advisor, "Idempotency-Key": "tablet-7f3a-0001"}

    first = await reception.post("/intakes", headers=keyed, json=payload)
    assert first.status_code == 201
    again = await reception.post("/intakes", headers=keyed, json=payload)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    after = await counts(reception)
    assert after[Intake.__name__] == before[Intake.__name__] + 1
    assert after[OutboxEvent.__name__] == before[OutboxEvent.__name__] + 1

    other = await reception.post("/intakes", headers=keyed, json={**payload, "odometer_km": 121})
    body = assert_problem(other, 422, "Idempotency-Key")
    assert "another request body" in body["detail"]

    # Another user may use the same key for their own request.
    colleague = {**auth("advisor", "BR01"), "Idempotency-Key": "tablet-7f3a-0001"}
    assert (await reception.post("/intakes", headers=colleague, json=payload)).status_code == 201
    # Without a key every POST is a new intake.
    assert (await reception.post("/intakes", headers=advisor, json=payload)).status_code == 201
    assert (await counts(reception))[Intake.__name__] == before[Intake.__name__] + 3


async def test_a_failed_request_is_not_remembered(reception: httpx.AsyncClient):  # noqa: F811
    keyed = {**auth("advisor"), "Idempotency-Key": "k-1"}
    bad = await reception.post("/customers", headers=keyed, json={"name": "B", "mobile": "x"})
    assert_problem(bad, 422, "mobile")
    good = await reception.post("/customers", headers=keyed, json={"name": "B"})
    assert good.status_code == 201
    assert_problem(
        await reception.post(
            "/customers", headers={**auth("advisor"), "Idempotency-Key": ""}, json={"name": "B"}
        ),
        422,
        "idempotency-key",
    )


class _Answer(BaseModel):
    id: int


class _AnswerWithSecret(_Answer):
    secret: str


@pytest.mark.store
async def test_the_stored_answer_holds_only_the_declared_fields(database_url: str) -> None:
    """An answer built as a subclass of the declared model keeps its extra fields through
    validation; neither the record nor a retry may carry them."""
    db = Database(database_url, info={IDEMPOTENCY_MODEL: IdempotencyRecord})
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(IdempotencyRecord.__table__.create)

        async def work() -> _AnswerWithSecret:
            return _AnswerWithSecret(id=7, secret="scr_only-in-the-first-answer")

        async with db.transaction() as session:
            first = await Idempotency(session, "u1", "k-1", "f", branch="BR01").run(work, _Answer)
        assert first.secret  # the first answer is the caller's to shape
        async with db.transaction() as session:
            replay = await Idempotency(session, "u1", "k-1", "f", branch="BR01").run(work, _Answer)
        assert json.loads(replay.body) == {"id": 7}
        async with db.reader() as session:
            record = (await session.exec(select(IdempotencyRecord))).one()
            assert record.body == {"id": 7}
    finally:
        await db.dispose()


def _calls(dependant: Any) -> set[Any]:
    found: set[Any] = set()
    for dependency in dependant.dependencies:
        found |= {dependency.call, *_calls(dependency)}
    return found


def _headers(dependant: Any) -> set[str]:
    found = {param.alias.lower() for param in dependant.header_params}
    for dependency in dependant.dependencies:
        found |= _headers(dependency)
    return found


@pytest.mark.parametrize("service", ["reception", "workorders", "followup", "records"])
async def test_every_route_taking_a_key_authenticates_its_caller(service: str) -> None:
    """Keys are scoped to the caller, whom the route's role dependency authenticates (from
    the bearer token)."""
    app = importlib.import_module(f"services.{service}.main").create_app()
    keyed = [
        route
        for route in app.routes
        if isinstance(route, APIRoute) and "idempotency-key" in _headers(route.dependant)
    ]
    assert keyed, "no route takes an Idempotency-Key"
    unauthenticated = [
        f"{sorted(route.methods or ())} {route.path}"
        for route in keyed
        if not any(isinstance(call, HTTPBearer) for call in _calls(route.dependant))
    ]
    assert unauthenticated == []
