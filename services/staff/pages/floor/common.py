"""What the shop floor's pages share: a job as a row shows it, what changed under a stale
edit (412), and the live feed that tells a page the work changed (workorders' board
stream, relayed as a bare `changed` event)."""

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from services.staff.api import Answer
from services.staff.i18n import field_errors, problem_text
from services.staff.pages.floor import labels as _labels  # noqa: F401  (joins the catalog)
from services.staff.web import Viewer, needs

FloorReader = Annotated[Viewer, Depends(needs("foreman", "technician", "qc", "manager"))]


def install(app: FastAPI) -> None:
    app.add_api_route("/floor/events", live, methods=["GET"], include_in_schema=False)


def job_row(seen: Viewer, job: dict[str, Any], order: dict[str, Any] | None) -> dict[str, Any]:
    """A job as the floor's tables show it, with the order's plate and number."""
    start = seen.local(job.get("planned_start_at"))
    order = order or {}
    return {
        "id": job["id"],
        "order_id": job["repair_order_id"],
        "number": order.get("number", ""),
        "plate": order.get("plate") or (order.get("vin") or "")[-6:],
        "op_code": job["op_code"],
        "description": job.get("description") or "",
        "flat_rate_hours": job["flat_rate_hours"],
        "actual_hours": job.get("actual_hours"),
        "status": job["status"],
        "technician_id": job.get("technician_id") or "",
        "bay": job.get("bay") or "",
        "planned_start": start.strftime("%H:%M") if start else "",
        "planned_start_at": start,
        "pause_reason": job.get("pause_reason"),
        "rework_count": job.get("rework_count", 0),
        "version": job["version"],
    }


def what_changed(
    seen: Viewer,
    before: dict[str, str],
    now: dict[str, Any],
    fields: dict[str, str],
    shown: Callable[[str, str], str] = lambda name, value: value,
) -> list[str]:
    """For a 412: each field (by its label key) whose value differs from the one the form
    was rendered with (its `seen_<name>` hidden field), told with its value now."""
    t = seen.t
    lines = []
    for name, label in fields.items():
        was, current = str(before.get(f"seen_{name}", "")), now.get(name)
        current_text = "" if current is None else str(current)
        if was != current_text:
            value = shown(name, current_text) if current_text else "—"
            lines.append(t["changed_field"].format(field=t[label], now=value))
    return lines


def refused(answer: Answer, seen: Viewer) -> tuple[dict[str, str], str | None]:
    """A service's no: its field errors, else one message, in the user's language."""
    errors = field_errors(answer, seen.lang)
    return errors, None if errors else problem_text(answer, seen.lang)


async def live(request: Request, seen: FloorReader) -> Response:
    """The board's changes as `changed` events: each one tells the page to fetch its part
    again (the page reads what it shows through the same APIs, with the user's rights)."""
    http: httpx.AsyncClient = request.app.state.http
    url = request.app.state.api_bases["workorders"] + "/board/events"
    headers = {"Authorization": f"Bearer {seen.api.token}", "Accept": "text/event-stream"}

    async def relay() -> AsyncIterator[bytes]:
        yield b"retry: 2000\n\n"
        try:
            async with http.stream(
                "GET", url, headers=headers, timeout=httpx.Timeout(10, read=60)
            ) as upstream:
                if upstream.status_code != 200:
                    return
                event = ""
                async for line in upstream.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line == "":
                        if event == "card":
                            yield b"event: changed\ndata: card\n\n"
                        elif event == "ping":
                            yield b": ping\n\n"
                        event = ""
        except httpx.HTTPError:
            return  # the browser reconnects after `retry`

    return StreamingResponse(
        relay(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
