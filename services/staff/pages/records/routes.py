"""The records clerk's pages, installed together: the library, the lending desk, the
archive, and `/records`, which opens the library."""

from fastapi import FastAPI
from fastapi.responses import Response

from services.staff.pages.records import archive, lending, library
from services.staff.pages.records.common import Desk


def install(app: FastAPI) -> None:
    app.add_api_route("/records", start, methods=["GET"], include_in_schema=False)
    library.install(app)
    lending.install(app)
    archive.install(app)


async def start(seen: Desk) -> Response:
    return Response(status_code=303, headers={"Location": "/records/library"})
