"""Printable intake sheets and estimates (PDF, Chinese or English)."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.reception import stored_files
from services.reception.models import Language
from services.reception.routes import DocumentReader
from shared.downloads import file_headers
from shared.service import ReadSessionDep

router = APIRouter(tags=["documents"])

Lang = Annotated[
    Language | None,
    Query(description="zh-CN or en; the customer's language when left out"),
]
PDF: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/pdf": {}}, "description": "the PDF"}
}


def _pdf(data: bytes, name: str) -> Response:
    return Response(
        data,
        media_type="application/pdf",
        headers=file_headers("application/pdf", name)[1],
    )


@router.get(
    "/intakes/{intake_id}/sheet.pdf",
    response_class=Response,
    responses=PDF,
    summary="The intake sheet to print and sign: walk-around, damage marks, concerns, "
    "valuables reminder",
)
async def intake_sheet(
    intake_id: uuid.UUID,
    request: Request,
    session: ReadSessionDep,
    user: DocumentReader,
    lang: Lang = None,
) -> Response:
    from services.reception import documents  # the PDF libraries load on first use

    parts = await documents.intake_parts(session, intake_id, user)
    images = await stored_files.fetch_for_print(request, documents.intake_files(parts[0]))
    data = await documents.intake_pdf(
        parts, lang.value if lang else None, request.app.state.settings, images
    )
    return _pdf(data, f"intake-{intake_id}.pdf")


@router.get(
    "/estimates/{estimate_id}/estimate.pdf",
    response_class=Response,
    responses=PDF,
    summary="The estimate to print: lines, pay types, tax, totals and the promised time "
    "(the current revision, or `revision`)",
)
async def estimate_sheet(
    estimate_id: uuid.UUID,
    request: Request,
    session: ReadSessionDep,
    user: DocumentReader,
    lang: Lang = None,
    revision: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> Response:
    from services.reception import documents  # the PDF libraries load on first use

    data = await documents.estimate_pdf(
        session,
        estimate_id,
        user,
        lang.value if lang else None,
        revision,
        request.app.state.settings,
    )
    return _pdf(data, f"estimate-{estimate_id}-r{revision or 'current'}.pdf")
