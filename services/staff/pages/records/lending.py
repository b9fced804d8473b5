"""The lending desk (借阅台): the requests waiting, approval with the due date, hand-out,
return with the item's condition, lost, the overdue loans with the borrower to chase,
and the shelf of items to lend. Every change carries the loan's ETag."""

from datetime import date, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from services.staff.api import gather, page_items
from services.staff.pages.records.common import Clerk, refused
from services.staff.web import Form, Viewer, render

ACTIONS = ("approve", "reject", "cancel", "hand-out", "return", "report-lost")
CONDITIONS = ("good", "worn", "damaged", "incomplete")


def install(app: FastAPI) -> None:
    route = app.add_api_route
    route("/records/lending", desk, methods=["GET"], include_in_schema=False)
    route("/records/lending/items", add_item, methods=["POST"], include_in_schema=False)
    route(
        "/records/lending/loans/{loan_id}/{action}",
        act,
        methods=["POST"],
        include_in_schema=False,
    )


def _loan_row(seen: Viewer, loan: dict[str, Any], titles: dict[str, str]) -> dict[str, Any]:
    due = loan.get("due_on")
    late = 0
    if due and loan.get("overdue"):
        late = (seen.today() - date.fromisoformat(due)).days
    return {
        **loan,
        "item_title": titles.get(loan["item_id"], loan["item_id"][:8]),
        "requested": seen.local(loan.get("requested_at")),
        "handed_out": seen.local(loan.get("handed_out_at")),
        "days_late": late,
    }


async def _page(
    request: Request,
    seen: Viewer,
    *,
    forms: dict[str, Any] | None = None,
    item_form: dict[str, Any] | None = None,
    saved: str | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    items, waiting, promised, out, overdue = await gather(
        seen.api.get("records", "/lending/items", limit=200),
        seen.api.get("records", "/lending/loans", status="requested", limit=100),
        seen.api.get("records", "/lending/loans", status="approved", limit=100),
        seen.api.get("records", "/lending/loans", status="out", limit=100),
        seen.api.get("records", "/lending/overdue", limit=100),
    )
    for answer in (items, waiting, promised, out, overdue):
        if not answer.ok:
            problem = problem or refused(answer, seen)[1]
    shelf = page_items(items.body) if items.ok else []
    titles = {i["id"]: i["title"] for i in shelf}

    def rows(answer: Any) -> list[dict[str, Any]]:
        return (
            [_loan_row(seen, loan, titles) for loan in page_items(answer.body)] if answer.ok else []
        )

    return render(
        request,
        "records_lending.html",
        lang=seen.lang,
        viewer=seen,
        nav="lending",
        waiting=rows(waiting),
        promised=rows(promised),
        out=rows(out),
        overdue=rows(overdue),
        shelf=shelf,
        conditions=CONDITIONS,
        default_due=(seen.today() + timedelta(days=7)).isoformat(),
        forms=forms or {},
        item_form=item_form or {"values": {}, "errors": {}},
        saved=saved,
        problem=problem,
        status_code=status_code,
    )


async def desk(request: Request, seen: Clerk) -> Response:
    return await _page(request, seen)


async def add_item(request: Request, seen: Clerk, form: Form) -> Response:
    body: dict[str, Any] = {
        "title": form.get("title", "").strip(),
        "kind": form.get("kind", "physical_copy"),
        "shelf_mark": form.get("shelf_mark", "").strip() or None,
        "document_id": form.get("document_id", "").strip() or None,
    }
    answer = await seen.api.call(
        "records", "POST", "/lending/items", json=body, idempotency_key=form.get("idempotency_key")
    )
    if answer.ok:
        return await _page(request, seen, saved=seen.t["item_added"].format(title=body["title"]))
    errors, message = refused(answer, seen)
    return await _page(
        request,
        seen,
        item_form={"values": form, "errors": errors},
        problem=message,
        status_code=422,
    )


async def act(request: Request, loan_id: str, action: str, seen: Clerk, form: Form) -> Response:
    """One step of a loan, with the loan's ETag as the clerk saw it."""
    if action not in ACTIONS:
        return await _page(request, seen, status_code=404)
    body: dict[str, Any] = {"note": form.get("note", "").strip()}
    if action == "approve":
        body["due_on"] = form.get("due_on", "") or None
    if action == "return":
        body["condition"] = form.get("condition", "") or None
    answer = await seen.api.call(
        "records",
        "POST",
        f"/lending/loans/{loan_id}/{action}",
        json=body,
        idempotency_key=form.get("idempotency_key"),
        if_match=form.get("etag"),
    )
    if answer.ok:
        saved = seen.t[f"loan_{action}_ok"].format(due=answer.body.get("due_on") or "")
        return await _page(request, seen, saved=saved)
    errors, message = refused(answer, seen)
    if answer.status == 412:
        message = seen.t["changed"]
    forms = {loan_id: {"values": form, "errors": errors, "message": message, "action": action}}
    return await _page(request, seen, forms=forms, status_code=422 if errors else 409)
