"""The records clerk's pages, installed together: the library, the lending desk, the
archive, and `/records`, which opens the library."""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from services.staff.pages.records import archive, lending, library
from services.staff.pages.records.common import Desk


def install(app: FastAPI) -> None:
    app.add_api_route("/records", start, methods=["GET"], include_in_schema=False)
    # A form's address opened again (the language switch, a bookmark, a reload after the
    # answer): the page the form was on.
    for path, target in _FORM_PAGES.items():
        app.add_api_route(path, _back(target), methods=["GET"], include_in_schema=False)
    library.install(app)
    lending.install(app)
    archive.install(app)


_FORM_PAGES = {
    "/records/lending/items": "/records/lending",
    "/records/lending/loans/{loan_id}/{action}": "/records/lending",
    "/records/library/{document_id}/versions": "/records/library/{document_id}",
    "/records/archive/customers/{customer_id}/erasure": "/records/archive/customers/{customer_id}",
    "/records/archive/customers/{customer_id}/erasure/confirm": (
        "/records/archive/customers/{customer_id}"
    ),
}


def _back(target: str) -> Callable[..., Coroutine[Any, Any, Response]]:
    async def back(request: Request, seen: Desk) -> Response:
        return Response(status_code=303, headers={"Location": target.format(**request.path_params)})

    return back


async def start(seen: Desk) -> Response:
    return Response(status_code=303, headers={"Location": "/records/library"})
