"""The foreman's pages: the dispatch board (unassigned jobs, each technician's queue and
bay, assign or reassign with a tap, live), and the workshop's registered TV screens."""

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from services.staff.api import gather, page_items
from services.staff.config import Settings
from services.staff.pages.floor.common import job_row, refused, what_changed
from services.staff.web import Form, Viewer, needs, render, settings_of

Foreman = Annotated[Viewer, Depends(needs("foreman", "manager"))]

_ASSIGN_FIELDS = {"technician_id": "technician", "bay": "bay", "status": "status"}


def install(app: FastAPI) -> None:
    route = app.add_api_route
    route("/foreman", board, methods=["GET"], include_in_schema=False)
    route("/foreman/lanes", lanes, methods=["GET"], include_in_schema=False)
    route("/foreman/jobs/{job_id}/assign", assign, methods=["POST"], include_in_schema=False)
    route("/foreman/screens", screens, methods=["GET"], include_in_schema=False)
    route("/foreman/screens", register_screen, methods=["POST"], include_in_schema=False)
    route(
        "/foreman/screens/{screen_id}/withdraw",
        withdraw_screen,
        methods=["POST"],
        include_in_schema=False,
    )


def technicians(settings: Settings, seen: Viewer, lanes: list[str]) -> list[dict[str, str]]:
    """Who can be given work: the technicians on the day's board and the branch's staff."""
    names = {
        s.sub: s.name
        for s in settings.demo_staff
        if s.role == "technician" and s.branch == seen.session.branch
    }
    ids = list(dict.fromkeys([*names, *lanes]))
    return [{"id": i, "name": names.get(i, i)} for i in ids]


async def _day(request: Request, seen: Viewer, day: date) -> dict[str, Any]:
    answer = await seen.api.get("workorders", "/dispatch/day", on=day.isoformat())
    if not answer.ok:
        _, message = refused(answer, seen)
        return {"problem": message, "unassigned": [], "lanes": [], "bays": [], "technicians": []}
    body = answer.body
    jobs = [*body["unassigned"], *(j for lane in body["technicians"] for j in lane["jobs"])]
    order_ids = sorted({j["repair_order_id"] for j in jobs})
    orders = await gather(*(seen.api.get("workorders", f"/repair-orders/{i}") for i in order_ids))
    by_id = {i: a.body for i, a in zip(order_ids, orders, strict=True) if a.ok}
    people = technicians(settings_of(request), seen, [lane["key"] for lane in body["technicians"]])
    names = {p["id"]: p["name"] for p in people}
    lanes_by_key = {lane["key"]: lane["jobs"] for lane in body["technicians"]}
    return {
        "problem": None,
        "unassigned": [
            job_row(seen, j, by_id.get(j["repair_order_id"])) for j in body["unassigned"]
        ],
        "lanes": [
            {
                "key": p["id"],
                "name": names[p["id"]],
                "jobs": [
                    job_row(seen, j, by_id.get(j["repair_order_id"]))
                    for j in lanes_by_key.get(p["id"], [])
                ],
            }
            for p in people
        ],
        "bays": sorted(lane["key"] for lane in body["bays"]),
        "technicians": people,
    }


def _render_lanes(
    request: Request, seen: Viewer, day: date, forms: dict[str, Any] | None = None, **extra: Any
) -> Any:
    return render(
        request, "_dispatch.html", lang=seen.lang, viewer=seen, day=day, forms=forms or {}, **extra
    )


async def board(request: Request, seen: Foreman, day: date | None = None) -> Response:
    shown = day or seen.today()
    return render(
        request,
        "dispatch.html",
        lang=seen.lang,
        viewer=seen,
        day=shown,
        is_today=shown == seen.today(),
        prev_day=shown - timedelta(days=1),
        next_day=shown + timedelta(days=1),
        forms={},
        nav="dispatch",
        **await _day(request, seen, shown),
    )


async def lanes(request: Request, seen: Foreman, day: date | None = None) -> Response:
    shown = day or seen.today()
    return _render_lanes(request, seen, shown, **await _day(request, seen, shown))


def _planned(seen: Viewer, day: date, value: str) -> str | None:
    """The planned start: a time on the day shown, in the branch's zone."""
    if not value:
        return None
    try:
        clock = time.fromisoformat(value)
    except ValueError:
        return value  # the service names it
    return datetime.combine(day, clock, tzinfo=seen.tz).isoformat()


async def assign(request: Request, job_id: str, seen: Foreman, form: Form) -> Response:
    """Dispatch or reassign one job, with the version the foreman saw (If-Match)."""
    try:
        day = date.fromisoformat(form.get("day", ""))
    except ValueError:
        day = seen.today()
    body = {
        "technician_id": form.get("technician_id", ""),
        "bay": form.get("bay", "").strip(),
        "planned_start_at": _planned(seen, day, form.get("planned_start", "")),
    }
    answer = await seen.api.call(
        "workorders",
        "PUT",
        f"/jobs/{job_id}/assignment",
        json=body,
        idempotency_key=form.get("idempotency_key"),
        if_match=f'"{form.get("version", "")}"',
    )
    state = await _day(request, seen, day)
    if answer.ok:
        who = next(
            (p["name"] for p in state["technicians"] if p["id"] == body["technician_id"]),
            body["technician_id"],
        )
        saved = seen.t["assigned_ok"].format(who=who, bay=body["bay"])
        return _render_lanes(request, seen, day, saved=saved, saved_job=job_id, **state)
    errors, message = refused(answer, seen)
    changed: list[str] = []
    if answer.status == 412:
        now = await seen.api.get("workorders", f"/jobs/{job_id}")
        names = {p["id"]: p["name"] for p in state["technicians"]}

        def shown(name: str, value: str) -> str:
            if name == "technician_id":
                return names.get(value, value)
            return seen.t.get(f"job_{value}", value) if name == "status" else value

        changed = what_changed(seen, form, now.body or {}, _ASSIGN_FIELDS, shown)
        message = None
    forms = {
        job_id: {
            # The refused values stay, with a new key: sending them again is a new request.
            "values": {
                **form,
                "idempotency_key": form.get("idempotency_key") if not changed else "",
            },
            "errors": errors,
            "message": message,
            "changed": changed,
        }
    }
    return _render_lanes(request, seen, day, forms=forms, status_code=200, **state)


# --- the workshop's TV screens -----------------------------------------------------------


async def _screens(seen: Viewer) -> tuple[list[dict[str, Any]], str | None]:
    answer = await seen.api.get("workorders", "/board/screens", limit=100)
    if not answer.ok:
        return [], refused(answer, seen)[1]
    rows = []
    for item in page_items(answer.body):
        rows.append(
            {
                **item,
                "created": seen.local(item.get("created_at")),
                "seen": seen.local(item.get("last_seen_at")),
                "revoked": bool(item.get("revoked_at")),
            }
        )
    return rows, None


async def screens(request: Request, seen: Foreman) -> Response:
    rows, problem = await _screens(seen)
    return render(
        request,
        "screens.html",
        lang=seen.lang,
        viewer=seen,
        rows=rows,
        problem=problem,
        values={},
        errors={},
        nav="screens",
    )


async def register_screen(request: Request, seen: Foreman, form: Form) -> Response:
    body = {
        "name": form.get("name", ""),
        "variant": form.get("variant", "board"),
        "lang": form.get("screen_lang", "zh-CN"),
    }
    answer = await seen.api.call(
        "workorders",
        "POST",
        "/board/screens",
        json=body,
        idempotency_key=form.get("idempotency_key"),
    )
    errors, message = ({}, None) if answer.ok else refused(answer, seen)
    shown_url = None
    if answer.ok and answer.body.get("url"):
        # The token is in this answer only: shown once, never kept by this app.
        shown_url = request.app.state.api_bases["workorders"] + answer.body["url"]
    rows, problem = await _screens(seen)
    return render(
        request,
        "screens.html",
        lang=seen.lang,
        viewer=seen,
        rows=rows,
        problem=problem or message,
        values={} if answer.ok else form,
        errors={("screen_lang" if k == "lang" else k): v for k, v in errors.items()},
        new_url=shown_url,
        new_name=body["name"] if answer.ok else None,
        nav="screens",
        status_code=200 if answer.ok else 422,
        headers={"Cache-Control": "no-store"},
    )


async def withdraw_screen(request: Request, screen_id: str, seen: Foreman, form: Form) -> Response:
    answer = await seen.api.call(
        "workorders",
        "DELETE",
        f"/board/screens/{screen_id}",
        if_match=f'"{form.get("version", "")}"',
    )
    message = None if answer.ok else refused(answer, seen)[1]
    changed: list[str] = []
    if answer.status == 412:
        now = await seen.api.get("workorders", f"/board/screens/{screen_id}")
        changed = what_changed(seen, form, now.body or {}, {"name": "screen_name"})
        message = seen.t["changed"] + " " + "；".join(changed) if changed else seen.t["changed"]
    rows, problem = await _screens(seen)
    return render(
        request,
        "screens.html",
        lang=seen.lang,
        viewer=seen,
        rows=rows,
        problem=problem or message,
        values={},
        errors={},
        nav="screens",
    )
