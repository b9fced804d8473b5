"""Records' access table (README, "Who may do what") against the API: every operation
with a token of every role, refused or let in as the table says, and the fields of each
answer those of the role's view, on a real customer's archive (two visits, an invoice, a
payment, a complaint)."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.access_table import read_table, shape, views_on_reads, walk
from tests.harness import NatsServer, auth
from tests.test_records_archive import VIN, Story, events_of, feed, with_envelopes
from tests.test_records_files import RecordsClient

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

README = Path(__file__).parents[1] / "services" / "records" / "README.md"


@pytest_asyncio.fixture
async def records(
    database_url: str, nats_server: NatsServer, tmp_path: Path
) -> AsyncIterator[tuple[RecordsClient, dict[str, str]]]:
    """Records with one customer's story archived; the ids to call it with."""
    service = RecordsClient(database_url, nats_server, tmp_path / "files")
    async with service:
        story = Story()
        await feed(service.app.state.runtime.db, with_envelopes(events_of(story), story))
        yield service, {"vehicle_id": str(story.vehicle_id), "customer_id": str(story.customer_id)}


async def test_every_operation_as_every_role_is_what_the_readme_says(
    records: tuple[RecordsClient, dict[str, str]],
) -> None:
    service, seeds = records
    table = read_table(README)
    result = await walk(
        service.app,
        table,
        params=seeds,
        queries={"GET /vehicles": f"vin={VIN}"},
        own={"GET /lending/people/{person_id}/loans": "person_id"},
    )
    assert not result.mismatches, "\n".join(result.mismatches)
    assert views_on_reads(table) <= result.views_checked


async def test_the_foreman_reads_what_was_done_and_when_not_the_amounts(
    records: tuple[RecordsClient, dict[str, str]],
) -> None:
    service, seeds = records
    path = f"/vehicles/{seeds['vehicle_id']}/timeline"
    full = (await service.client.get(path, headers=auth("advisor"))).json()
    assert any("gross_total" in entry["summary"] for entry in full["entries"])
    seen = (await service.client.get(path, headers=auth("foreman"))).json()
    assert [e["kind"] for e in seen["entries"]] == [e["kind"] for e in full["entries"]]
    assert seen["vin"] == VIN and not {p for p in shape(seen) if "summary" in p}
    customer = f"/customers/{seeds['customer_id']}/timeline"
    assert (await service.client.get(customer, headers=auth("foreman"))).status_code == 403
