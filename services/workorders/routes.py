"""Workorders' HTTP API: parse, authorize, call the use case, return."""

import asyncio
import uuid
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Query, Request, Response, status

from services.workorders import payments, promise, roster, service, workshop
from services.workorders.config import Settings
from services.workorders.models import (
    ErpPaymentPublic,
    ExtraWorkPublic,
    InvoicePrint,
    JobPublic,
    MyJob,
    PartLinePublic,
    RepairOrderDetail,
    RepairOrderPublic,
    TimeEntryPublic,
    UnmatchedErpPayment,
)
from services.workorders.schemas import (
    ClockOff,
    ExtraWorkCreate,
    Handover,
    JobAssignment,
    NewPromise,
    OrderTransition,
    PartMove,
    PartRequest,
    QcInspectionPublic,
    QcVerdict,
    Settlement,
)
from services.workorders.states import RepairOrderStatus
from shared.auth import Role, User, require
from shared.concurrency import IfMatch, set_etag
from shared.downloads import file_headers
from shared.events import utcnow
from shared.idempotency import IdempotencyDep
from shared.openapi import content_of
from shared.pagination import Cursor, Limit, Page, whole
from shared.problems import Conflict, InvalidInput
from shared.service import ReadSessionDep, SessionDep, Write, writer
from shared.types import Day

router = APIRouter()


def _settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.runtime.settings)


SettingsDep = Annotated[Settings, Depends(_settings)]

# The order itself: the desk, the workshop floor and the cashier, each seeing its own
# fields of it (access.py); a status screen sees only the board.
Reader = Annotated[
    User,
    Depends(
        require(Role.advisor, Role.foreman, Role.technician, Role.qc, Role.cashier, Role.manager)
    ),
]
# Promises: the advisor who calls the customer and the dispatcher who plans the work.
PromiseReader = Annotated[User, Depends(require(Role.advisor, Role.foreman, Role.manager))]
# The advisor cancels or releases an order; the foreman moves it through the workshop.
OrderMover = Annotated[User, Depends(require(Role.foreman, Role.advisor, Role.manager))]
Foreman = Annotated[User, Depends(require(Role.foreman, Role.manager))]
# Clocking, the busiest writes: the technician, the key and the session in one dependency.
TechnicianWrite = Annotated[Write, Depends(writer(Role.technician), scope="function")]
Finder = Annotated[User, Depends(require(Role.technician, Role.foreman))]
Technician = Annotated[User, Depends(require(Role.technician))]
Inspector = Annotated[User, Depends(require(Role.qc))]
# A cashier settles; a manager may too (and only a manager grants a large discount).
Cashier = Annotated[User, Depends(require(Role.cashier, Role.manager))]
Advisor = Annotated[User, Depends(require(Role.advisor))]
TimeReader = Annotated[User, Depends(require(Role.foreman, Role.manager, Role.technician))]
# Who may see what the customer paid: the desk, not the workshop floor or the screens.
MoneyReader = Annotated[User, Depends(require(Role.cashier, Role.manager, Role.advisor))]


@router.get(
    "/repair-orders",
    response_model=Page[RepairOrderPublic],
    tags=["repair orders"],
    summary="Repair orders of your branch, newest first",
)
async def list_repair_orders(
    session: ReadSessionDep,
    user: Reader,
    limit: Limit = 50,
    cursor: Cursor = None,
    intake_id: Annotated[uuid.UUID | None, Query()] = None,
    status: Annotated[RepairOrderStatus | None, Query()] = None,
):
    items, next_cursor = await service.list_repair_orders(
        session, user, intake_id=intake_id, status=status, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/repair-orders/at-risk",
    response_model=Page[RepairOrderPublic],
    tags=["promise time"],
    summary="The advisor's list: open orders projected to miss their promise (the first "
    "`limit`; one page, as the open orders bound it)",
)
async def at_risk_repair_orders(session: ReadSessionDep, user: PromiseReader, limit: Limit = 50):
    return whole(await promise.at_risk_orders(session, user, limit))


@router.post(
    "/repair-orders/{order_id}/promise",
    response_model=RepairOrderDetail,
    tags=["promise time"],
    summary="Record that the customer was told, and the new promise they agreed (If-Match)",
)
async def renew_promise(
    order_id: uuid.UUID,
    body: NewPromise,
    response: Response,
    session: SessionDep,
    user: OrderMover,
    idempotency: IdempotencyDep,
    if_match: IfMatch = None,
):
    async def work() -> RepairOrderDetail:
        order = await promise.renew_promise(
            session, order_id, body, user, utcnow(), if_match=if_match
        )
        set_etag(response, order.version)
        return await service.order_detail(session, order)

    return await idempotency(session).run(
        work, RepairOrderDetail, status_code=200, response=response
    )


@router.get(
    "/repair-orders/{order_id}",
    response_model=RepairOrderDetail,
    tags=["repair orders"],
    summary="A repair order with its jobs, extra work and invoice (ETag for If-Match)",
)
async def get_repair_order(
    order_id: uuid.UUID, response: Response, session: ReadSessionDep, user: Reader
):
    order = await service.get_repair_order(session, order_id, user)
    set_etag(response, order.version)
    return await service.order_detail(session, order)


@router.post(
    "/repair-orders/{order_id}/transitions",
    response_model=RepairOrderDetail,
    tags=["repair orders"],
    summary="Move the order: open → in_progress ⇄ waiting_parts → qc → washing → ready; "
    "cancel before work starts (If-Match)",
)
async def transition_repair_order(
    order_id: uuid.UUID,
    body: OrderTransition,
    response: Response,
    session: SessionDep,
    user: OrderMover,
    idempotency: IdempotencyDep,
    if_match: IfMatch = None,
):
    async def work() -> RepairOrderDetail:
        order = await service.transition_order(session, order_id, body, user, if_match=if_match)
        set_etag(response, order.version)
        return await service.order_detail(session, order)

    return await idempotency(session).run(
        work, RepairOrderDetail, status_code=200, response=response
    )


@router.post(
    "/repair-orders/{order_id}/extra-work",
    status_code=status.HTTP_201_CREATED,
    response_model=ExtraWorkPublic,
    tags=["extra work"],
    summary="Report extra work found (增项); it starts only after the customer consents",
)
async def report_extra_work(
    order_id: uuid.UUID,
    body: ExtraWorkCreate,
    session: SessionDep,
    user: Finder,
    idempotency: IdempotencyDep,
):
    async def work() -> ExtraWorkPublic:
        extra = await service.report_extra_work(session, order_id, body, user, utcnow())
        return ExtraWorkPublic.model_validate(extra)

    return await idempotency(session).run(work, ExtraWorkPublic)


@router.post(
    "/repair-orders/{order_id}/settlement",
    response_model=RepairOrderDetail,
    tags=["settlement and delivery"],
    summary="Settle the bill (结算): invoice by pay type, tax, payments (If-Match)",
)
async def settle_repair_order(
    order_id: uuid.UUID,
    body: Settlement,
    response: Response,
    session: SessionDep,
    user: Cashier,
    idempotency: IdempotencyDep,
    settings: SettingsDep,
    if_match: IfMatch = None,
):
    async def work() -> RepairOrderDetail:
        order = await service.settle(
            session,
            order_id,
            body,
            user,
            utcnow(),
            if_match=if_match,
            discount_limit_percent=settings.discount_limit_percent,
        )
        set_etag(response, order.version)
        return await service.order_detail(session, order)

    return await idempotency(session).run(
        work, RepairOrderDetail, status_code=200, response=response
    )


@router.post(
    "/repair-orders/{order_id}/delivery",
    response_model=RepairOrderDetail,
    tags=["settlement and delivery"],
    summary="Hand the car back (交车) (If-Match)",
)
async def deliver_repair_order(
    order_id: uuid.UUID,
    body: Handover,
    response: Response,
    session: SessionDep,
    user: Advisor,
    idempotency: IdempotencyDep,
    settings: SettingsDep,
    if_match: IfMatch = None,
):
    async def work() -> RepairOrderDetail:
        order = await service.deliver(
            session, order_id, body, user, utcnow(), if_match=if_match, zone=settings.time_zone
        )
        set_etag(response, order.version)
        return await service.order_detail(session, order)

    return await idempotency(session).run(
        work, RepairOrderDetail, status_code=200, response=response
    )


@router.get(
    "/jobs/mine",
    response_model=Page[MyJob],
    tags=["clocking"],
    summary="Your jobs to do or under way, as planned, or those you finished on a day "
    "(technician; the first `limit`, one page)",
)
async def my_jobs(
    session: ReadSessionDep,
    user: Technician,
    settings: SettingsDep,
    limit: Limit = 50,
    finished_on: Annotated[
        Day | None,
        Query(description="instead: the jobs you finished that day (the branch's time zone)"),
    ] = None,
):
    if finished_on is not None:
        zone = workshop.ZoneInfo(settings.zone_of(user.branch))
        return whole(await service.my_finished_jobs(session, user, finished_on, zone, limit))
    return whole(await service.my_jobs(session, user, limit))


@router.get(
    "/jobs/awaiting-qc",
    response_model=Page[MyJob],
    tags=["QC"],
    summary="Jobs finished and not inspected yet, oldest first (qc; the first `limit`, one page)",
)
async def jobs_awaiting_qc(session: ReadSessionDep, user: Inspector, limit: Limit = 50):
    return whole(await service.awaiting_qc(session, user, limit))


@router.get(
    "/jobs/{job_id}",
    response_model=JobPublic,
    tags=["jobs"],
    summary="A job with its actual hours (ETag for If-Match)",
)
async def get_job(job_id: uuid.UUID, response: Response, session: ReadSessionDep, user: Reader):
    job = await service.get_job(session, job_id, user)
    set_etag(response, job.version)
    return await service.job_detail(session, job)


@router.get(
    "/jobs/{job_id}/qc",
    response_model=Page[QcInspectionPublic],
    tags=["QC"],
    summary="A job's QC verdicts, newest first (a fail's reason is what rework answers)",
)
async def job_qc_history(job_id: uuid.UUID, session: ReadSessionDep, user: Reader):
    job = await service.get_job(session, job_id, user)
    inspections = await service.qc_history(session, job)
    return whole([QcInspectionPublic.model_validate(i) for i in inspections])


@router.put(
    "/jobs/{job_id}/assignment",
    response_model=JobPublic,
    tags=["dispatch"],
    summary="Dispatch (派工) or reassign a job: technician, bay, planned start (If-Match)",
)
async def assign_job(
    job_id: uuid.UUID,
    body: JobAssignment,
    response: Response,
    session: SessionDep,
    user: Foreman,
    settings: SettingsDep,
    if_match: IfMatch = None,
):
    job = await workshop.assign(
        session, job_id, body, user, if_match=if_match, zone=settings.zone_of(user.branch)
    )
    set_etag(response, job.version)
    return await service.job_detail(session, job)


@router.post(
    "/jobs/{job_id}/clock-on",
    status_code=status.HTTP_201_CREATED,
    response_model=TimeEntryPublic,
    tags=["clocking"],
    summary="Clock on your job (one job at a time)",
)
async def clock_on(job_id: uuid.UUID, write: TechnicianWrite):
    return await write.idempotency.run(
        lambda: workshop.clock_on(write.statements, job_id, write.user, utcnow()), TimeEntryPublic
    )


@router.post(
    "/jobs/{job_id}/clock-off",
    response_model=TimeEntryPublic,
    tags=["clocking"],
    summary="Clock off your job: finished, or paused with a reason",
)
async def clock_off(job_id: uuid.UUID, body: ClockOff, write: TechnicianWrite):
    return await write.idempotency.run(
        lambda: workshop.clock_off(write.statements, job_id, body, write.user, utcnow()),
        TimeEntryPublic,
        status_code=200,
    )


@router.post(
    "/jobs/{job_id}/qc",
    status_code=status.HTTP_201_CREATED,
    response_model=QcInspectionPublic,
    tags=["QC"],
    summary="Pass or fail a finished job (质检); a fail sends it back as rework",
)
async def inspect_job(
    job_id: uuid.UUID,
    body: QcVerdict,
    response: Response,
    session: SessionDep,
    user: Inspector,
    idempotency: IdempotencyDep,
    if_match: IfMatch = None,
):
    async def work() -> QcInspectionPublic:
        job, inspection = await service.record_qc(
            session, job_id, body, user, utcnow(), if_match=if_match
        )
        set_etag(response, job.version)
        return QcInspectionPublic.model_validate(inspection, from_attributes=True)

    return await idempotency(session).run(work, QcInspectionPublic, response=response)


@router.post(
    "/jobs/{job_id}/parts",
    status_code=status.HTTP_201_CREATED,
    response_model=PartLinePublic,
    tags=["parts"],
    summary="Ask for a part the job needs",
)
async def request_part(
    job_id: uuid.UUID,
    body: PartRequest,
    response: Response,
    session: SessionDep,
    user: Finder,
    idempotency: IdempotencyDep,
):
    async def work() -> PartLinePublic:
        part = await service.request_part(session, job_id, body, user, utcnow())
        set_etag(response, part.version)
        return PartLinePublic.model_validate(part)

    return await idempotency(session).run(work, PartLinePublic, response=response)


@router.post(
    "/parts/{part_id}/transitions",
    response_model=PartLinePublic,
    tags=["parts"],
    summary="Move a parts line: requested → ordered (with ETA) → issued → returned",
)
async def move_part_line(
    part_id: uuid.UUID,
    body: PartMove,
    response: Response,
    session: SessionDep,
    user: Foreman,
    idempotency: IdempotencyDep,
    if_match: IfMatch = None,
):
    async def work() -> PartLinePublic:
        part = await service.move_part_line(
            session, part_id, body, user, utcnow(), if_match=if_match
        )
        set_etag(response, part.version)
        return PartLinePublic.model_validate(part)

    return await idempotency(session).run(work, PartLinePublic, status_code=200, response=response)


@router.get(
    "/dispatch/day",
    response_model=workshop.DayBoard,
    tags=["dispatch"],
    summary="The foreman's day: jobs per technician and per bay, and what is unassigned",
)
async def dispatch_day(
    session: ReadSessionDep,
    user: Foreman,
    settings: SettingsDep,
    on: Annotated[Day | None, Query(description="the day in the branch's time zone")] = None,
):
    zone = settings.zone_of(user.branch)
    day = on or utcnow().astimezone(workshop.ZoneInfo(zone)).date()
    return await workshop.day_board(session, user, day, zone, utcnow())


@router.get(
    "/technicians/working",
    response_model=Page[roster.WorkingTechnician],
    tags=["dispatch"],
    summary="The branch's technicians working a day (its roster), whom dispatch may offer",
)
async def technicians_working(
    session: ReadSessionDep,
    user: Foreman,
    settings: SettingsDep,
    on: Annotated[Day | None, Query(description="the day in the branch's time zone")] = None,
):
    day = on or roster.day_of(utcnow(), settings.zone_of(user.branch))
    return await roster.working_technicians(session, user.branch, day)


@router.get(
    "/technicians/productivity",
    response_model=Page[workshop.Productivity],
    tags=["clocking"],
    summary="Hours clocked, efficiency and utilisation per technician for a day",
)
async def technician_productivity(
    session: ReadSessionDep,
    user: TimeReader,
    settings: SettingsDep,
    on: Annotated[Day | None, Query(description="the day in the branch's time zone")] = None,
):
    zone = settings.zone_of(user.branch)
    day = on or utcnow().astimezone(workshop.ZoneInfo(zone)).date()
    return whole(
        await workshop.productivity(session, user, day, zone, settings.shift_hours, utcnow())
    )


@router.get(
    "/repair-orders/{order_id}/erp-payments",
    response_model=Page[ErpPaymentPublic],
    tags=["settlement and delivery"],
    summary="Payments the ERP confirmed for this order's invoice, oldest first (one page)",
)
async def erp_payments_of_order(order_id: uuid.UUID, session: ReadSessionDep, user: MoneyReader):
    order = await service.get_repair_order(session, order_id, user)
    return whole(await payments.payments_of(session, order.id))


@router.get(
    "/erp-payments/unmatched",
    response_model=Page[UnmatchedErpPayment],
    tags=["settlement and delivery"],
    summary="The cashier's list: confirmed payments whose invoice matches no repair order, "
    "newest first",
)
async def unmatched_erp_payments(
    session: ReadSessionDep,
    user: Annotated[User, Depends(require(Role.cashier, Role.manager))],
    limit: Limit = 50,
    cursor: Cursor = None,
):
    items, next_cursor = await payments.unmatched(session, user, limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=next_cursor)


PdfLang = Annotated[str, Query(pattern="^(zh-CN|en)$", description="zh-CN or en")]
PDF_HEADERS = {"Cache-Control": "no-store"}


@router.get(
    "/repair-orders/{order_id}/repair-order.pdf",
    response_class=Response,
    responses=content_of("application/pdf", description="the repair order"),
    tags=["documents"],
    summary="The repair order as a PDF, in Chinese or English",
)
async def repair_order_document(
    order_id: uuid.UUID,
    session: ReadSessionDep,
    user: Annotated[
        User,
        Depends(require(Role.advisor, Role.foreman, Role.cashier, Role.manager)),
    ],
    settings: SettingsDep,
    lang: PdfLang = "zh-CN",
) -> Response:
    order = await service.get_repair_order(session, order_id, user)
    detail = await service.order_detail(session, order)
    from services.workorders import documents  # the PDF libraries load on first use

    data = await asyncio.to_thread(
        documents.repair_order_pdf,
        detail,
        lang=lang,
        dealer=settings.dealer_name,
        zone=settings.zone_of(order.branch),
    )
    return Response(
        data,
        media_type="application/pdf",
        headers={
            **PDF_HEADERS,
            **file_headers("application/pdf", f"{order.number}.pdf")[1],
        },
    )


@router.post(
    "/repair-orders/{order_id}/invoice/prints",
    status_code=status.HTTP_201_CREATED,
    response_model=InvoicePrint,
    tags=["documents"],
    summary="Record a print of the invoice: the first is the original, later ones are copies",
)
async def print_invoice(
    order_id: uuid.UUID,
    session: SessionDep,
    user: Cashier,
    idempotency: IdempotencyDep,
):
    return await idempotency(session).run(
        lambda: service.record_invoice_print(session, order_id, user, utcnow()), InvoicePrint
    )


@router.get(
    "/repair-orders/{order_id}/invoice/prints",
    response_model=Page[InvoicePrint],
    tags=["documents"],
    summary="Who printed the invoice when, the original first (one page)",
)
async def invoice_prints(order_id: uuid.UUID, session: ReadSessionDep, user: MoneyReader):
    order = await service.get_repair_order(session, order_id, user)
    return whole(await service.invoice_print_log(session, order.id))


@router.get(
    "/repair-orders/{order_id}/invoice.pdf",
    response_class=Response,
    responses=content_of("application/pdf", description="the invoice"),
    tags=["documents"],
    summary=(
        "The invoice as a PDF: the last recorded print, or print n (copies are marked);"
        " a preview before any print. Reading it counts no print"
    ),
)
async def invoice_document(
    order_id: uuid.UUID,
    session: ReadSessionDep,
    user: MoneyReader,
    settings: SettingsDep,
    lang: PdfLang = "zh-CN",
    printed: Annotated[int | None, Query(alias="print", ge=1, le=10000)] = None,
) -> Response:
    order = await service.get_repair_order(session, order_id, user)
    if order.invoice is None:
        raise Conflict("the order is not settled yet; there is no invoice")
    # Reading is not printing: a print is counted by its own POST (.../invoice/prints)
    # when the cashier prints; before any, the invoice reads as a preview (print 0).
    number = printed or order.invoice_prints
    if number > order.invoice_prints:
        raise InvalidInput("print", f"only {order.invoice_prints} prints were recorded")
    detail = await service.order_detail(session, order)
    from services.workorders import documents  # the PDF libraries load on first use

    data = await asyncio.to_thread(
        documents.invoice_pdf,
        detail,
        lang=lang,
        dealer=settings.dealer_name,
        zone=settings.zone_of(order.branch),
        printed=number,
    )
    name = order.invoice_number or order.number
    return Response(
        data,
        media_type="application/pdf",
        headers={
            **PDF_HEADERS,
            **file_headers(
                "application/pdf", f"{name}-{number}.pdf" if number else f"{name}-preview.pdf"
            )[1],
        },
    )
