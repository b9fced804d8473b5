"""Estimates, canned jobs, the consent ledger and the customer approval link over HTTP."""

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response, status
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from services.reception import approval, estimates, stored_files
from services.reception.config import Settings
from services.reception.models import (
    ApprovalLinkCreate,
    ApprovalLinkPublic,
    CannedJobAdd,
    CannedJobCreate,
    CannedJobPublic,
    ConsentCreate,
    ConsentPublic,
    EstimateCreate,
    EstimatePublic,
    EstimateRevise,
    LinkConsentCreate,
    Reoffer,
)
from services.reception.routes import Advisor, Reader
from shared.concurrency import IfMatch, check_if_match
from shared.idempotency import Idempotency, IdempotencyDep
from shared.openapi import content_of
from shared.pagination import Limit, Page, whole
from shared.service import ReadSessionDep, SessionDep, runtime

router = APIRouter()


def _settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(_settings)]
Token = Annotated[str, Path(min_length=20, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]


async def _count_link_attempt(token: Token, request: Request) -> None:
    """Runs before the request's own session opens: refused attempts count too."""
    host = request.client.host if request.client else None
    await approval.admit(runtime(request).db, token, approval.client_key(host), _settings(request))


# Declared before the session in a route's parameters, so it commits first.
LinkAttempt = Annotated[None, Depends(_count_link_attempt)]


async def _keep_consent_signature(estimate_id: uuid.UUID, request: Request, user: Advisor) -> None:
    """Records keeps the signature of a consent given in person. Runs before the request's
    own session opens, so no database lock is held while records answers."""
    try:
        body = ConsentCreate.model_validate_json(await request.body())
    except ValidationError:
        return  # the route answers with the 422
    if body.signature_file_id is None:
        return
    key = request.headers.get("idempotency-key")
    async with runtime(request).db.reader() as session:
        await estimates.get_estimate(session, estimate_id, user)
        if key and await Idempotency(session, user.id, key, "", branch=user.branch).stored():
            # A retry: records kept the signature the first time, and the route answers
            # with the stored answer (or 422 for another body) without records.
            return
    await stored_files.keep(
        request,
        [
            stored_files.FileUse(
                body.signature_file_id,
                stored_files.CONSENT_SIGNATURE,
                estimate_id,
                "signature_file_id",
            )
        ],
    )


KeepSignature = Annotated[None, Depends(_keep_consent_signature)]


def _with_etag(response: Response, result: EstimatePublic) -> EstimatePublic:
    response.headers["ETag"] = result.etag
    return result


def _answered(
    response: Response, work: Callable[[], Awaitable[EstimatePublic]]
) -> Callable[[], Awaitable[EstimatePublic]]:
    """The work of a keyed write, setting the ETag its answer (and every retry) carries."""

    async def answered() -> EstimatePublic:
        return _with_etag(response, await work())

    return answered


@router.post(
    "/estimates",
    status_code=status.HTTP_201_CREATED,
    response_model=EstimatePublic,
    tags=["estimates"],
    summary="Write the estimate of an intake (revision 1)",
)
async def create_estimate(
    body: EstimateCreate,
    session: SessionDep,
    user: Advisor,
    idempotency: IdempotencyDep,
    settings: SettingsDep,
    response: Response,
):
    return await idempotency(session).run(
        _answered(response, lambda: estimates.create(session, body, user, settings)),
        EstimatePublic,
        response=response,
    )


@router.get(
    "/estimates/extra-work",
    response_model=Page[EstimatePublic],
    tags=["estimates"],
    summary="Estimates waiting for the customer's answer on work found in the workshop "
    "(newest first; the first `limit`, one page)",
)
async def extra_work_waiting(session: ReadSessionDep, user: Advisor, limit: Limit = 50):
    return whole(await estimates.extra_work_waiting(session, user, limit))


@router.get(
    "/estimates/{estimate_id}",
    response_model=EstimatePublic,
    tags=["estimates"],
    summary="The current revision, with each line's answer and the totals",
)
async def get_estimate(
    estimate_id: uuid.UUID, session: ReadSessionDep, user: Reader, response: Response
):
    estimate = await estimates.get_estimate(session, estimate_id, user)
    return _with_etag(response, await estimates.public(session, estimate))


@router.get(
    "/intakes/{intake_id}/estimate",
    response_model=EstimatePublic,
    tags=["estimates"],
    summary="The estimate of an intake",
)
async def get_intake_estimate(
    intake_id: uuid.UUID, session: ReadSessionDep, user: Reader, response: Response
):
    estimate = await estimates.find_by_intake(session, intake_id, user)
    return _with_etag(response, await estimates.public(session, estimate))


@router.get(
    "/estimates/{estimate_id}/revisions/{number}",
    response_model=EstimatePublic,
    tags=["estimates"],
    summary="Any revision, as it was written",
)
async def get_estimate_revision(
    estimate_id: uuid.UUID,
    number: Annotated[int, Path(ge=1, le=100_000)],
    session: ReadSessionDep,
    user: Reader,
):
    estimate = await estimates.get_estimate(session, estimate_id, user)
    revision = await estimates.get_revision(session, estimate, number)
    return await estimates.public(session, estimate, revision)


@router.put(
    "/estimates/{estimate_id}",
    response_model=EstimatePublic,
    tags=["estimates"],
    summary="Revise: the whole new line list and promised time (If-Match required)",
)
async def revise_estimate(
    estimate_id: uuid.UUID,
    body: EstimateRevise,
    session: SessionDep,
    user: Advisor,
    settings: SettingsDep,
    response: Response,
    if_match: IfMatch = None,
):
    result = await estimates.revise(session, estimate_id, body, user, if_match, settings)
    return _with_etag(response, result)


@router.post(
    "/estimates/{estimate_id}/canned-jobs",
    response_model=EstimatePublic,
    tags=["estimates"],
    summary="Add a canned job (labour and its parts) in one call: a new revision",
)
async def add_canned_job(
    estimate_id: uuid.UUID,
    body: CannedJobAdd,
    session: SessionDep,
    user: Advisor,
    idempotency: IdempotencyDep,
    settings: SettingsDep,
    response: Response,
    if_match: IfMatch = None,
):
    return await idempotency(session).run(
        _answered(
            response,
            lambda: estimates.add_canned_job(session, estimate_id, body, user, if_match, settings),
        ),
        EstimatePublic,
        status_code=200,
        response=response,
    )


@router.post(
    "/estimates/{estimate_id}/reoffer",
    response_model=EstimatePublic,
    tags=["estimates"],
    summary="Offer declined lines again: a new revision in which they need an answer",
)
async def reoffer_lines(
    estimate_id: uuid.UUID,
    body: Reoffer,
    session: SessionDep,
    user: Advisor,
    idempotency: IdempotencyDep,
    response: Response,
    if_match: IfMatch = None,
):
    return await idempotency(session).run(
        _answered(
            response, lambda: estimates.reoffer(session, estimate_id, body.line_ids, user, if_match)
        ),
        EstimatePublic,
        status_code=200,
        response=response,
    )


@router.post(
    "/estimates/{estimate_id}/consents",
    response_model=EstimatePublic,
    tags=["consent"],
    summary="Record the customer's answers (in person with signature, or by phone)",
)
async def record_consent(
    estimate_id: uuid.UUID,
    body: ConsentCreate,
    _signature_kept: KeepSignature,
    session: SessionDep,
    user: Advisor,
    idempotency: IdempotencyDep,
    response: Response,
    if_match: IfMatch = None,
):
    async def work() -> EstimatePublic:
        estimate = await estimates.get_estimate(session, estimate_id, user)
        check_if_match(if_match, estimate.version)
        result = await estimates.record_consent(
            session,
            estimate,
            body.decisions,
            by=body.by,
            channel=body.channel,
            recorded_by=user.id,
            signature_file_id=body.signature_file_id,
            call_note=body.call_note,
            actor=user,
        )
        return _with_etag(response, result)

    return await idempotency(session).run(work, EstimatePublic, status_code=200, response=response)


@router.get(
    "/estimates/{estimate_id}/consents",
    response_model=Page[ConsentPublic],
    tags=["consent"],
    summary="The consent ledger of an estimate, oldest first (one page)",
)
async def list_consents(estimate_id: uuid.UUID, session: ReadSessionDep, user: Reader):
    estimate = await estimates.get_estimate(session, estimate_id, user)
    return whole(await estimates.ledger(session, estimate.id))


@router.post(
    "/estimates/{estimate_id}/approval-links",
    status_code=status.HTTP_201_CREATED,
    response_model=ApprovalLinkPublic,
    tags=["consent"],
    summary="A short-lived link for the customer to answer the current revision",
    description="The token is shown once and only its hash is kept, so this POST does not "
    "replay answers for an Idempotency-Key: a retry makes another link, and an unused link "
    "simply expires.",
)
async def create_approval_link(
    estimate_id: uuid.UUID,
    session: SessionDep,
    user: Advisor,
    settings: SettingsDep,
    body: ApprovalLinkCreate | None = None,
):
    return await approval.create_link(
        session, estimate_id, body or ApprovalLinkCreate(), user, settings
    )


@router.delete(
    "/estimates/{estimate_id}/approval-links/{link_id}",
    response_model=ApprovalLinkPublic,
    tags=["consent"],
    summary="Revoke an approval link",
)
async def revoke_approval_link(
    estimate_id: uuid.UUID, link_id: uuid.UUID, session: SessionDep, user: Advisor
):
    return await approval.revoke_link(session, estimate_id, link_id, user)


LINK_RESPONSES: dict[int | str, dict[str, Any]] = {
    410: {"description": "The link expired or was revoked"},
    429: {"description": "Too many tries with this link or from this address"},
}


@router.get(
    "/approve/font.ttf",
    tags=["customer"],
    summary="The approval page's font (Chinese and Latin), for phones without Chinese fonts",
    response_class=Response,
    responses=content_of("font/ttf", description="TrueType"),
)
async def approval_font() -> Response:
    # The CJK face of the printed documents: a customer's phone without Chinese fonts
    # still reads 同意 and 拒绝. Declared before /approve/{token}, which would take it.
    import asyncio

    from shared import pdf  # reportlab loads on first use

    data = await asyncio.to_thread(pdf.font_ttf)
    return Response(data, media_type="font/ttf", headers={"Cache-Control": "max-age=604800"})


@router.get(
    "/approve/{token}",
    response_class=HTMLResponse,
    tags=["customer"],
    summary="The customer's approval page (the token is the credential)",
    responses=LINK_RESPONSES,
)
async def approval_page(
    token: Token, _counted: LinkAttempt, session: ReadSessionDep, settings: SettingsDep
):
    estimate = await approval.view(session, token)
    return HTMLResponse(
        approval.page(estimate, token, settings.time_zone), headers={"Cache-Control": "no-store"}
    )


@router.post(
    "/approve/{token}",
    response_model=EstimatePublic,
    tags=["customer"],
    summary="The customer's answers through the link (channel link)",
    responses=LINK_RESPONSES,
)
async def approve_by_link(
    token: Token,
    body: LinkConsentCreate,
    _counted: LinkAttempt,
    session: SessionDep,
    response: Response,
):
    return _with_etag(response, await approval.consent(session, token, body))


@router.post(
    "/canned-jobs",
    status_code=status.HTTP_201_CREATED,
    response_model=CannedJobPublic,
    tags=["estimates"],
    summary="Define a canned job: an op code with its labour and parts",
)
async def create_canned_job(
    body: CannedJobCreate, session: SessionDep, user: Advisor, idempotency: IdempotencyDep
):
    async def work() -> CannedJobPublic:
        canned = await estimates.create_canned_job(session, body, user)
        return CannedJobPublic(id=canned.id, branch=canned.branch, **canned.template)

    return await idempotency(session).run(work, CannedJobPublic)


@router.get(
    "/canned-jobs",
    response_model=Page[CannedJobPublic],
    tags=["estimates"],
    summary="Canned jobs of your branch, by op code (at most 500; one page)",
)
async def list_canned_jobs(session: ReadSessionDep, user: Reader):
    return whole(
        [
            CannedJobPublic(id=c.id, branch=c.branch, **c.template)
            for c in await estimates.list_canned_jobs(session, user)
        ]
    )
