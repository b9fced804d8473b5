"""The cashier's preview of an order's invoice over HTTP."""

import uuid

from fastapi import APIRouter, Response

from services.workorders import invoicing, service
from services.workorders.routes import MoneyReader
from shared.concurrency import set_etag
from shared.service import ReadSessionDep

router = APIRouter(tags=["settlement and delivery"])


@router.get(
    "/repair-orders/{order_id}/invoice-preview",
    response_model=invoicing.InvoicePreview,
    summary="What the customer owes before settling: the invoice lines, tax and due per "
    "payer, priced as settlement prices them (ETag of the order, for the settlement)",
    responses={409: {"description": "the order is settled (its invoice is on it) or cancelled"}},
)
async def invoice_preview(
    order_id: uuid.UUID, response: Response, session: ReadSessionDep, user: MoneyReader
):
    order = await service.get_repair_order(session, order_id, user)
    result = invoicing.preview(order, await service.jobs_of(session, order.id))
    set_etag(response, order.version)
    return result
