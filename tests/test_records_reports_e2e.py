"""Reports end to end with real processes: a repair order consented, clocked, passed by QC,
settled and delivered in workorders, surveyed in followup, shows in records' report — its
revenue, hours, efficiency, CSI and follow-up — and in the drill-down and the PDF."""

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from shared import pdf
from tests.flow import assign, order_opened, publish_consent, read
from tests.harness import Stack, auth, backend, eventually, postgres_available, token
from tests.test_workorders_api import approved_now, labour, part

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

FOREMAN = auth("foreman")
TECH = {"Authorization": f"Bearer {token('technician', sub='tech-report')}"}
MANAGER = auth("manager")


@pytest.fixture(scope="module")
def report_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if backend() == "postgres" and not postgres_available():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is unreachable (CI requires it)")
        pytest.skip("PostgreSQL not reachable")
    root = Path(tmp_path_factory.mktemp("reports"))
    running = Stack(
        root,
        services=("workorders", "followup", "records"),
        extra_env={"RECORDS_FILES_DIR": str(root / "files")},
    ).start()
    yield running
    running.stop()


async def test_a_settled_and_delivered_order_shows_in_the_report(report_stack: Stack) -> None:
    event = approved_now(lines=[labour("BRK-010", "1.5", "450"), part("BP-1", "380", "BRK-010")])
    await publish_consent(report_stack, event)

    async with httpx.AsyncClient(base_url=report_stack.url("workorders"), timeout=10) as c:
        order = await order_opened(c, event.intake_id)
        order_id = order["id"]
        detail, _ = await read(c, f"/repair-orders/{order_id}")
        job_id = detail["jobs"][0]["id"]
        await assign(c, job_id, "tech-report")
        assert (await c.post(f"/jobs/{job_id}/clock-on", headers=TECH)).status_code == 201
        r = await c.post(f"/jobs/{job_id}/clock-off", headers=TECH, json={})
        assert r.status_code == 200, r.text

        async def move(to: str) -> None:
            _, etag = await read(c, f"/repair-orders/{order_id}")
            r = await c.post(
                f"/repair-orders/{order_id}/transitions",
                headers={**FOREMAN, "If-Match": etag},
                json={"to": to},
            )
            assert r.status_code == 200, r.text

        await move("qc")
        r = await c.post(f"/jobs/{job_id}/qc", headers=auth("qc"), json={"passed": True})
        assert r.status_code == 201, r.text
        await move("ready")
        _, etag = await read(c, f"/repair-orders/{order_id}")
        r = await c.post(
            f"/repair-orders/{order_id}/settlement",
            headers={**auth("cashier"), "If-Match": etag},
            json={"payments": [{"method": "card", "amount": "937.90"}]},
        )
        assert r.status_code == 200, r.text
        _, etag = await read(c, f"/repair-orders/{order_id}")
        r = await c.post(
            f"/repair-orders/{order_id}/delivery",
            headers={**auth("advisor"), "If-Match": etag},
            json={
                "charges_explained": True,
                "old_parts_offered": True,
                "keys_returned": True,
                "declined_work_told": True,
            },
        )
        assert r.status_code == 200, r.text

    async with httpx.AsyncClient(base_url=report_stack.url("followup"), timeout=10) as f:
        agent = auth("followup_agent")

        async def visit() -> dict | None:
            r = await f.get("/visits", params={"view": "all"}, headers=agent)
            items = [v for v in r.json()["items"] if v["repair_order_id"] == order_id]
            return items[0] if items else None

        found = await eventually(visit, what="followup's visit from the delivery")
        r = await f.post(
            f"/visits/{found['id']}/survey", json={"overall": 8, "nps": 9}, headers=agent
        )
        assert r.status_code == 201, r.text

    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()
    period = {
        "period": "custom",
        "from_on": str(today - timedelta(days=1)),
        "to_on": str(today + timedelta(days=1)),
        "lang": "en",
    }
    async with httpx.AsyncClient(base_url=report_stack.url("records"), timeout=30) as rec:

        async def reported() -> dict | None:
            r = await rec.get("/reports/kpis", params=period, headers=MANAGER)
            assert r.status_code == 200, r.text
            kpi = {k["id"]: k["value"] for k in r.json()["kpis"]}
            settled_and_surveyed = kpi["revenue_total"] and kpi["csi"] and kpi["follow_up_rate"]
            return (
                r.json() if kpi["repair_orders_delivered"] == 1 and settled_and_surveyed else None
            )

        report = await eventually(reported, timeout=30, what="the order in records' report")
        kpi = {k["id"]: k["value"] for k in report["kpis"]}
        assert kpi["repair_orders_opened"] == 1
        assert kpi["revenue_total"] == 450 + 380
        assert (kpi["revenue_labour"], kpi["revenue_parts"]) == (450, 380)
        assert kpi["hours_sold"] == 1.5
        assert kpi["on_time_delivery_rate"] == 1.0
        assert kpi["first_time_fix_rate"] == 1.0
        assert (kpi["csi"], kpi["nps"], kpi["follow_up_rate"]) == (8.0, 100.0, 1.0)
        assert [t["technician_id"] for t in report["technicians"]] == ["tech-report"]

        r = await rec.get("/reports/kpis/revenue_total/items", params=period, headers=MANAGER)
        [item] = r.json()["items"]
        assert (item["repair_order_id"], item["number"]) == (order_id, order["number"])
        assert item["detail"]["net_cents"] == 83000

        r = await rec.get("/reports/kpis.pdf", params=period, headers=MANAGER)
        assert r.status_code == 200
        text = pdf.pdf_text(r.content)
        assert "¥830.00" in text and "tech-report" in text
