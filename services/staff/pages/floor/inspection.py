"""The multi-point inspection on the technician's phone: the order's items by area, each
tapped green / amber / red with a note, a measurement and photos (uploaded to records'
files first, as the extra-work form does), saved one item at a time with the inspection's
ETag; completing it sends the amber and red items to the customer as extra work."""

import re
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from services.staff.api import Answer
from services.staff.i18n import add_words
from services.staff.pages.floor.common import job_row, refused
from services.staff.web import Form, Viewer, needs, render

Technician = Annotated[Viewer, Depends(needs("technician"))]
Desk = Annotated[Viewer, Depends(needs("advisor", "foreman", "manager"))]

LABELS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "inspection": "多项检查",
        "inspection_start": "开始多项检查",
        "inspection_none": "这张工单还没有多项检查。",
        "inspection_progress": "已检查 {done} / {total} 项",
        "inspection_green": "正常",
        "inspection_amber": "建议关注",
        "inspection_red": "需立即处理",
        "inspection_status": "状态",
        "inspection_note": "备注",
        "inspection_value": "测量值（{unit}）",
        "inspection_limits": "低于 {amber} {unit} 为黄，低于 {red} {unit} 为红",
        "inspection_photos": "拍照",
        "inspection_photo_count": "已有照片 {n} 张",
        "inspection_save": "保存此项",
        "inspection_saved": "已保存",
        "inspection_complete": "完成检查",
        "inspection_completed": "检查已完成",
        "inspection_sent": "黄色和红色项目已作为增项发给服务顾问报价，客户在确认链接上逐项答复",
        "inspection_all_green": "全部正常，没有建议项目",
        "inspection_stale": "检查已被他人更新，已重新载入，请再保存一次",
        "inspection_item": "检查项目",
        "inspection_measured": "测量值",
    },
    "en": {
        "inspection": "Multi-point inspection",
        "inspection_start": "Start the inspection",
        "inspection_none": "This repair order has no inspection yet.",
        "inspection_progress": "{done} of {total} items checked",
        "inspection_green": "Good",
        "inspection_amber": "Needs attention soon",
        "inspection_red": "Needs attention now",
        "inspection_status": "Status",
        "inspection_note": "Note",
        "inspection_value": "Measured ({unit})",
        "inspection_limits": "below {amber} {unit} amber, below {red} {unit} red",
        "inspection_photos": "Photos",
        "inspection_photo_count": "{n} photo(s) taken",
        "inspection_save": "Save this item",
        "inspection_saved": "Saved",
        "inspection_complete": "Complete the inspection",
        "inspection_completed": "Inspection completed",
        "inspection_sent": "Amber and red items went to the advisor as extra work to price; "
        "the customer answers each on the approval link",
        "inspection_all_green": "All good, nothing proposed",
        "inspection_stale": "Someone else updated the inspection; reloaded, save again",
        "inspection_item": "Item",
        "inspection_measured": "Measured",
    },
}
MESSAGES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"every item needs green, amber or red", re.I), "每一项都需选择绿、黄或红"),
    (re.compile(r"already has its inspection", re.I), "这张工单已有多项检查"),
    (re.compile(r"inspection is (already )?completed", re.I), "检查已完成，不能再修改"),
)
add_words(LABELS, MESSAGES)

STATUSES = ("green", "amber", "red")


def install(app: FastAPI) -> None:
    route = app.add_api_route
    base = "/tech/jobs/{job_id}/inspection"
    route(base, page, methods=["GET"], include_in_schema=False)
    route(base, start, methods=["POST"], include_in_schema=False)
    route(base + "/items/{code}", save_item, methods=["POST"], include_in_schema=False)
    route(base + "/complete", complete, methods=["POST"], include_in_schema=False)
    route("/orders/{order_id}/inspection", report, methods=["GET"], include_in_schema=False)


async def _job(seen: Viewer, job_id: str) -> dict[str, Any] | None:
    job = await seen.api.get("workorders", f"/jobs/{job_id}")
    if not job.ok or job.body.get("technician_id") != seen.session.sub:
        return None
    return job.body


def _not_found(request: Request, seen: Viewer) -> Response:
    return render(
        request,
        "error.html",
        lang=seen.lang,
        viewer=seen,
        status_code=404,
        message_key="not_found",
        fmt={},
    )


def _areas(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    areas: dict[str, dict[str, Any]] = {}
    for item in items:
        area = areas.setdefault(
            item["area"],
            {"code": item["area"], "zh": item["area_zh"], "en": item["area_en"], "items": []},
        )
        area["items"].append(item)
    return list(areas.values())


async def _page(
    request: Request,
    seen: Viewer,
    job_id: str,
    status_code: int = 200,
    *,
    saved: str | None = None,
    errors: dict[str, dict[str, str]] | None = None,
    message: str | None = None,
    show_missing: bool = False,
) -> Response:
    job = await _job(seen, job_id)
    if job is None:
        return _not_found(request, seen)
    order_id = job["repair_order_id"]
    order = await seen.api.get("workorders", f"/repair-orders/{order_id}")
    inspection = await seen.api.get("workorders", f"/repair-orders/{order_id}/inspection")
    items = inspection.body.get("items", []) if inspection.ok else []
    return render(
        request,
        "tech_inspection.html",
        lang=seen.lang,
        viewer=seen,
        job=job_row(seen, job, order.body if order.ok else None),
        inspection=inspection.body if inspection.ok else None,
        etag=inspection.etag,
        areas=_areas(items),
        done=sum(1 for i in items if i.get("status")),
        total=len(items),
        statuses=STATUSES,
        missing=[i for i in items if not i.get("status")] if show_missing else [],
        saved=saved,
        errors=errors or {},
        message=message,
        nav="my_jobs",
        status_code=status_code,
    )


async def page(request: Request, job_id: str, seen: Technician) -> Response:
    return await _page(request, seen, job_id)


def _refusal(answer: Answer, seen: Viewer) -> tuple[int, str | None, dict[str, str]]:
    if answer.status == 412:
        return 409, seen.t["inspection_stale"], {}
    errors, message = refused(answer, seen)
    return 422, message, errors


async def start(request: Request, job_id: str, seen: Technician, form: Form) -> Response:
    job = await _job(seen, job_id)
    if job is None:
        return _not_found(request, seen)
    answer = await seen.api.call(
        "workorders",
        "POST",
        f"/repair-orders/{job['repair_order_id']}/inspection",
        idempotency_key=form.get("idempotency_key"),
    )
    if answer.ok:
        return await _page(request, seen, job_id)
    status, message, _ = _refusal(answer, seen)
    return await _page(request, seen, job_id, status, message=message)


async def save_item(
    request: Request, job_id: str, code: str, seen: Technician, form: Form
) -> Response:
    """Photos first (records keeps them), then the item with the photos it had and the new
    ones, under the inspection's ETag."""
    job = await _job(seen, job_id)
    if job is None:
        return _not_found(request, seen)
    sent = await request.form()
    photos = [p for p in sent.getlist("photos") if isinstance(p, UploadFile) and p.filename]
    file_ids = [str(f) for f in sent.getlist("photo_file_ids") if isinstance(f, str) and f]
    for photo in photos:
        content = await photo.read()
        uploaded = await seen.api.call(
            "records",
            "POST",
            "/files",
            files={"file": (photo.filename, content, photo.content_type or "image/jpeg")},
        )
        if not uploaded.ok:
            _, message = refused(uploaded, seen)
            errors = {code: {"photos": message or ""}}
            return await _page(request, seen, job_id, 422, errors=errors)
        file_ids.append(uploaded.body["id"])
    body: dict[str, Any] = {
        "status": form.get("status") or None,
        "note": form.get("note", "").strip(),
        "value": form.get("value", "").strip() or None,
        "photo_file_ids": file_ids,
    }
    answer = await seen.api.call(
        "workorders",
        "PUT",
        f"/repair-orders/{job['repair_order_id']}/inspection/items/{code}",
        json=body,
        if_match=form.get("etag") or None,
        idempotency_key=form.get("idempotency_key"),
    )
    if answer.ok:
        return await _page(request, seen, job_id, saved=code)
    status, message, fields = _refusal(answer, seen)
    if fields:
        return await _page(request, seen, job_id, status, errors={code: fields})
    return await _page(request, seen, job_id, status, message=message)


async def complete(request: Request, job_id: str, seen: Technician, form: Form) -> Response:
    job = await _job(seen, job_id)
    if job is None:
        return _not_found(request, seen)
    answer = await seen.api.call(
        "workorders",
        "POST",
        f"/repair-orders/{job['repair_order_id']}/inspection/completion",
        if_match=form.get("etag") or None,
        idempotency_key=form.get("idempotency_key"),
    )
    if answer.ok:
        return await _page(request, seen, job_id)
    status, message, fields = _refusal(answer, seen)
    return await _page(
        request,
        seen,
        job_id,
        status,
        message=message or "; ".join(fields.values()),
        show_missing="items" in fields,
    )


async def report(request: Request, order_id: str, seen: Desk) -> Response:
    """The inspection report of an order for the desk and the workshop office: every item by
    area with its colour, measurement, note and photos counted."""
    order = await seen.api.get("workorders", f"/repair-orders/{order_id}")
    if not order.ok:
        return _not_found(request, seen)
    inspection = await seen.api.get("workorders", f"/repair-orders/{order_id}/inspection")
    items = inspection.body.get("items", []) if inspection.ok else []
    done = inspection.body if inspection.ok else None
    completed = seen.local(done.get("completed_at")) if done else None
    return render(
        request,
        "inspection_report.html",
        lang=seen.lang,
        viewer=seen,
        order=order.body,
        inspection=done,
        areas=_areas(items),
        done=sum(1 for i in items if i.get("status")),
        total=len(items),
        counts={s: sum(1 for i in items if i.get("status") == s) for s in STATUSES},
        completed_at=completed.strftime("%Y-%m-%d %H:%M") if completed else "",
        statuses=STATUSES,
    )
