"""What every service process runs besides its routes: the heap settled after start-up and
the event loop's lag measured."""

import gc
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from fastapi import FastAPI
from prometheus_client import REGISTRY

from services.workorders.config import Settings
from services.workorders.main import create_app
from shared.service import GC_THRESHOLDS, LAG_PROBE_INTERVAL
from tests.harness import NatsServer, eventually

pytestmark = [pytest.mark.asyncio]


@pytest_asyncio.fixture
async def app(database_url: str, nats_server: NatsServer) -> AsyncIterator[FastAPI]:
    app = create_app(Settings(database_url=database_url, nats_url=nats_server.url))
    async with app.router.lifespan_context(app):
        yield app


async def test_a_started_service_keeps_its_start_up_heap_out_of_the_collector(
    app: FastAPI,
) -> None:
    """Clocking under load waited behind full collections of the start-up heap."""
    assert gc.get_freeze_count() > 10_000
    assert gc.get_threshold() == GC_THRESHOLDS


def _late_wakes(over: str) -> float:
    total = REGISTRY.get_sample_value("event_loop_lag_seconds_count") or 0.0
    within = REGISTRY.get_sample_value("event_loop_lag_seconds_bucket", {"le": over}) or 0.0
    return total - within


async def test_a_loop_held_by_synchronous_work_shows_as_lag(app: FastAPI) -> None:
    before = _late_wakes("0.1")
    # A synchronous stretch holding the loop, as a full collection did; longer than the
    # probe's interval, so its timer is late by more than 0.1 s wherever it was.
    busy_until = time.monotonic() + LAG_PROBE_INTERVAL + 0.35
    while time.monotonic() < busy_until:
        sum(range(1000))

    async def seen() -> bool:
        return _late_wakes("0.1") > before

    await eventually(seen, timeout=5, what="a late wake over 0.1 s")
