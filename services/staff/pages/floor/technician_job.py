"""One job on the technician's phone: ask for a part, report extra work found with photos
(uploaded to records' files first, then named in workorders' extra work)."""

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from services.staff.api import gather, page_items
from services.staff.pages.floor.common import job_row, refused
from services.staff.web import Form, Viewer, needs, render

Technician = Annotated[Viewer, Depends(needs("technician"))]


def install(app: FastAPI) -> None:
    route = app.add_api_route
    route("/tech/jobs/{job_id}", job_page, methods=["GET"], include_in_schema=False)
    route("/tech/library/{document_id}", document, methods=["GET"], include_in_schema=False)
    route("/tech/jobs/{job_id}/parts", ask_part, methods=["POST"], include_in_schema=False)
    route("/tech/jobs/{job_id}/extra-work", report, methods=["POST"], include_in_schema=False)


async def _page(
    request: Request, seen: Viewer, job_id: str, status_code: int = 200, **forms: Any
) -> Response:
    job = await seen.api.get("workorders", f"/jobs/{job_id}")
    if not job.ok or job.body.get("technician_id") != seen.session.sub:
        return render(
            request,
            "error.html",
            lang=seen.lang,
            viewer=seen,
            status_code=404,
            message_key="not_found",
            fmt={},
        )
    order = await seen.api.get("workorders", f"/repair-orders/{job.body['repair_order_id']}")
    # The library's documents for this car (by its VIN) and for this job's operation.
    vin = order.body.get("vin") if order.ok else None
    for_car, for_op = await gather(
        seen.api.get("records", "/library/for-vehicle", vin=vin, limit=50),
        seen.api.get("records", "/library/for-op-codes", op_code=[job.body["op_code"]], limit=50),
    )
    documents: dict[str, dict[str, Any]] = {}
    for answer in (for_op, for_car):
        if answer.ok:
            for item in page_items(answer.body):
                doc = item.get("document", item)  # a hit carries its document
                documents.setdefault(doc["id"], doc)
    empty: dict[str, Any] = {"values": {}, "errors": {}, "message": None}
    return render(
        request,
        "tech_job.html",
        lang=seen.lang,
        viewer=seen,
        job=job_row(seen, job.body, order.body if order.ok else None),
        part=forms.get("part") or empty,
        extra=forms.get("extra") or empty,
        saved=forms.get("saved"),
        documents=list(documents.values()),
        nav="my_jobs",
        status_code=status_code,
    )


async def job_page(request: Request, job_id: str, seen: Technician) -> Response:
    return await _page(request, seen, job_id)


async def document(request: Request, document_id: str, seen: Technician) -> Response:
    """A library document's current version, read with the technician's rights (records
    logs the download)."""
    http = request.app.state.http
    url = request.app.state.api_bases["records"] + f"/library/documents/{document_id}/content"
    upstream = await http.get(url, headers={"Authorization": f"Bearer {seen.api.token}"})
    return Response(
        upstream.content,
        status_code=upstream.status_code,
        media_type=upstream.headers.get("content-type", "application/octet-stream"),
        headers={"Cache-Control": "no-store"},
    )


async def ask_part(request: Request, job_id: str, seen: Technician, form: Form) -> Response:
    body = {
        "part_number": form.get("part_number", "").strip(),
        "quantity": form.get("quantity", "").strip() or "1",
        "description": form.get("part_description", "").strip(),
    }
    answer = await seen.api.call(
        "workorders",
        "POST",
        f"/jobs/{job_id}/parts",
        json=body,
        idempotency_key=form.get("idempotency_key"),
    )
    if answer.ok:
        return await _page(request, seen, job_id, saved=seen.t["part_requested"])
    errors, message = refused(answer, seen)
    return await _page(
        request,
        seen,
        job_id,
        422,
        part={"values": form, "errors": errors, "message": message},
    )


async def report(request: Request, job_id: str, seen: Technician, form: Form) -> Response:
    """Photos first (records keeps them; the same photo twice is the same file), then the
    extra work naming them, under the form's own key."""
    sent = await request.form()
    photos = [p for p in sent.getlist("photos") if isinstance(p, UploadFile) and p.filename]
    file_ids: list[str] = []
    for photo in photos:
        content = await photo.read()
        uploaded = await seen.api.call(
            "records",
            "POST",
            "/files",
            files={"file": (photo.filename, content, photo.content_type or "image/jpeg")},
        )
        if not uploaded.ok:
            errors, message = refused(uploaded, seen)
            return await _page(
                request,
                seen,
                job_id,
                422,
                extra={"values": form, "errors": {"photos": message or ""}, "message": None},
            )
        file_ids.append(uploaded.body["id"])
    job = await seen.api.get("workorders", f"/jobs/{job_id}")
    line: dict[str, Any] = {
        "kind": "labour",
        "op_code": form.get("op_code", "").strip() or None,
        "flat_rate_hours": form.get("flat_rate_hours", "").strip() or "0",
        "description": form.get("line_description", "").strip(),
    }
    answer = await seen.api.call(
        "workorders",
        "POST",
        f"/repair-orders/{job.body['repair_order_id']}/extra-work",
        json={
            "job_id": job_id,
            "findings": form.get("findings", ""),
            "photo_file_ids": file_ids,
            "proposed_lines": [line],
        },
        idempotency_key=form.get("idempotency_key"),
    )
    if answer.ok:
        return await _page(request, seen, job_id, saved=seen.t["extra_reported"])
    errors, message = refused(answer, seen)
    return await _page(
        request,
        seen,
        job_id,
        422,
        extra={"values": form, "errors": errors, "message": message},
    )
