"""The operator's way back from a dead letter (shared/deadletters.py) and the gauges that
show where events are (shared/gauges.py), against a real nats-server and database."""

import uuid
from types import SimpleNamespace
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY

from shared import deadletters, gauges, metrics
from shared.consumers import ConsumerRunner, Subscribers
from shared.settings import ServiceSettings
from tests.harness import eventually
from tests.test_events import Inbox, Outbox, PingSent, node, send, visits

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

FAILING = "probe__record_visit"
OTHER = "probe__other"


def handled(consumer: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "events_handled_total", {"consumer": consumer, "outcome": outcome}
    )
    return value or 0.0


def runtime_of(n: Any) -> Any:
    return cast(
        Any,
        SimpleNamespace(
            spec=SimpleNamespace(
                outbox_model=Outbox,
                subscribers=SimpleNamespace(handlers=n.runner.handlers),
                gauges=[],
            ),
            db=n.db,
            messaging=n.messaging,
            runner=n.runner,
        ),
    )


async def test_dead_letters_are_replayed_once_to_the_consumer_that_failed_them(
    database_url, nats_server, capsys
):
    broken = True

    async def behaviour(event: PingSent, attempt: int) -> None:
        if broken:
            raise ValueError("the handler's bug:\n第二行")

    async with node(database_url, nats_server.url, behaviour) as n:
        # A second consumer of the same events, which handles them the first time.
        other_calls: list[uuid.UUID] = []
        subscriber = Subscribers()

        @subscriber(PingSent, durable=OTHER)
        async def other(event: PingSent, session: Any) -> None:
            other_calls.append(event.ping_id)

        settings = ServiceSettings(
            service_name="probe",
            database_url=database_url,
            nats_url=nats_server.url,
            consumer_fetch_timeout=0.5,
        )
        other_runner = ConsumerRunner(n.db, n.messaging, subscriber.handlers, Inbox, settings)
        await other_runner.start()
        try:
            ids = await send(n.db, 3)
            js = n.messaging.js

            async def dead_count() -> bool:
                return len(await deadletters.dead_letters(js, FAILING)) == 3

            await eventually(dead_count, what="three dead letters")
            await eventually(lambda: _is(len(other_calls), 3), what="the other consumer")

            rt = runtime_of(n)
            await gauges.refresh(rt)
            dead = REGISTRY.get_sample_value("dead_letter_messages", {"consumer": FAILING})
            assert dead == 3

            await deadletters.main(["list", "--servers", nats_server.url])
            listed = capsys.readouterr().out
            assert "3 dead letters" in listed
            assert "probe.ping.sent.v1" in listed
            # Told on one line, what is not ASCII escaped (NATS headers carry ASCII).
            assert "the handler's bug: \\u7b2c\\u4e8c\\u884c" in listed

            calls_before = {ping_id: n.calls.count(ping_id) for ping_id in ids}
            broken = False  # the fix is deployed
            skipped_before = handled(OTHER, "replay_for_other")
            await deadletters.main(["replay", "--servers", nats_server.url, "--consumer", FAILING])
            assert "replayed 3 of 3" in capsys.readouterr().out
            await eventually(lambda: _equals(visits(n.db), 3), what="visits after the replay")
            assert await deadletters.dead_letters(js) == []
            # The other consumer acknowledged the copies unread: it did not even look them
            # up in its inbox.
            await eventually(
                lambda: _is(handled(OTHER, "replay_for_other") - skipped_before, 3),
                what="the other consumer skipping the replays",
            )
            assert sorted(other_calls) == sorted(ids)
            # Each event handled once more: the replay.
            assert all(n.calls.count(i) == calls_before[i] + 1 for i in ids)

            # Run again: nothing left, nothing sent twice.
            await deadletters.main(["replay", "--servers", nats_server.url])
            assert "replayed 0 of 0" in capsys.readouterr().out
            await gauges.refresh(rt)
            dead = REGISTRY.get_sample_value("dead_letter_messages", {"consumer": FAILING})
            assert dead == 0
            assert all(n.calls.count(i) == calls_before[i] + 1 for i in ids)
        finally:
            await other_runner.stop()


async def test_gauges_show_the_outbox_behind_and_each_consumers_backlog(database_url, nats_server):
    async def succeed(event: PingSent, attempt: int) -> None:
        return None

    async with node(database_url, nats_server.url, succeed) as n:
        rt = runtime_of(n)
        await send(n.db, 2)
        await eventually(lambda: _equals(visits(n.db), 2), what="two visits")

        async def caught_up() -> bool:
            await gauges.refresh(rt)
            return (
                REGISTRY.get_sample_value("outbox_unsent_rows") == 0
                and REGISTRY.get_sample_value("consumer_pending_messages", {"consumer": FAILING})
                == 0
                and REGISTRY.get_sample_value(
                    "consumer_ack_pending_messages", {"consumer": FAILING}
                )
                == 0
            )

        await eventually(caught_up, what="gauges at rest")
        assert REGISTRY.get_sample_value("outbox_oldest_unsent_age_seconds") == 0

        # The relay stops (as when JetStream refuses): rows wait, and their age shows.
        await n.relay.stop()
        errors_before = REGISTRY.get_sample_value(
            "metrics_refresh_errors_total", {"part": "outbox"}
        )
        await send(n.db, 4)
        await gauges.refresh(rt)
        assert REGISTRY.get_sample_value("outbox_unsent_rows") == 4
        age = REGISTRY.get_sample_value("outbox_oldest_unsent_age_seconds")
        assert age is not None and age > 0
        assert (
            REGISTRY.get_sample_value("metrics_refresh_errors_total", {"part": "outbox"})
            == errors_before
        )
    assert metrics.OUTBOX_UNSENT is not None


async def _equals(awaitable: Any, expected: Any) -> bool:
    return (await awaitable) == expected


async def _is(value: Any, expected: Any) -> bool:
    return value == expected
