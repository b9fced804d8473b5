"""What the records clerk's pages share: who may open them, a service's no in the user's
language, and downloads (documents, PDFs, exports) streamed from records with the user's
token."""

from typing import Annotated

import httpx
from fastapi import Depends, Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from services.staff.api import Answer, ServiceUnreachable
from services.staff.i18n import field_errors, problem_text
from services.staff.pages.records import labels as _labels  # noqa: F401  (joins the catalog)
from services.staff.web import RoleRefused, Viewer, needs, render

# Records' role table: the library's writes, the lending desk: the clerk; the library's
# reads, the archive, a customer's export and erasure: the clerk and the manager.
Clerk = Annotated[Viewer, Depends(needs("records_clerk"))]
Desk = Annotated[Viewer, Depends(needs("records_clerk", "manager"))]

# Headers of a download passed on as records sent them.
_PASSED = (
    "content-type",
    "content-length",
    "content-range",
    "accept-ranges",
    "content-disposition",
    "etag",
    "x-content-type-options",
)


def refused(answer: Answer, seen: Viewer) -> tuple[dict[str, str], str | None]:
    """A service's no: its field errors, else one message, in the user's language."""
    errors = field_errors(answer, seen.lang)
    return errors, None if errors else problem_text(answer, seen.lang)


async def download(
    request: Request, seen: Viewer, path: str, params: dict[str, str] | None = None
) -> Response:
    """Records' bytes streamed to the browser as they arrive, read with the user's token
    (records checks the rights and logs library downloads); never held whole here."""
    http: httpx.AsyncClient = request.app.state.http
    url = request.app.state.api_bases["records"] + path
    headers = {"Authorization": f"Bearer {seen.api.token}"}
    if "range" in request.headers:
        headers["Range"] = request.headers["range"]
    try:
        upstream = await http.send(
            http.build_request("GET", url, headers=headers, params=params), stream=True
        )
    except httpx.HTTPError as exc:
        raise ServiceUnreachable("records") from exc
    if upstream.status_code not in (200, 206):
        await upstream.aread()
        await upstream.aclose()
        if upstream.status_code == 403:
            raise RoleRefused()
        return render(
            request,
            "error.html",
            lang=seen.lang,
            viewer=seen,
            status_code=404 if upstream.status_code == 404 else 502,
            message_key="not_found",
            fmt={},
        )
    passed = {k: v for k, v in upstream.headers.items() if k.lower() in _PASSED}
    if "content-security-policy" in upstream.headers:
        passed["content-security-policy"] = upstream.headers["content-security-policy"]
    passed["Cache-Control"] = "no-store"
    return StreamingResponse(
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        headers=passed,
        background=BackgroundTask(upstream.aclose),
    )
