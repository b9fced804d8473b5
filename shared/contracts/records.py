"""Events records publishes."""

import uuid
from datetime import date, datetime
from decimal import Decimal

from shared.events import Contract


class LoanOverdue(Contract):
    """A lent item is past its due date; sent once per overdue day, for a reminder."""

    type = "records.loan.overdue.v1"

    loan_id: uuid.UUID
    item_id: uuid.UUID
    item_title: str
    branch: str
    borrower_id: str
    borrower_name: str
    due_on: date
    days_overdue: int


class PaymentConfirmed(Contract):
    """The dealer's ERP confirmed a payment for an invoice (a signed inbound webhook).
    Workorders records it against the repair order; `erp_payment_id` makes it idempotent."""

    type = "records.erp.payment_confirmed.v1"

    erp_payment_id: str
    branch: str
    invoice_number: str
    repair_order_id: uuid.UUID | None = None
    amount: Decimal
    currency: str = "CNY"
    method: str  # transfer, card, cash, wechat, alipay, fleet_account
    paid_at: datetime
    received_at: datetime


class WebhookEndpointDisabled(Contract):
    """An ERP webhook endpoint was switched off by the platform: it answered 410 Gone
    (`reason` "gone") or a delivery failed its last retry ("failing"). The branch's
    manager should look at the ERP side and re-enable the endpoint."""

    type = "records.webhook.endpoint_disabled.v1"

    endpoint_id: uuid.UUID
    branch: str
    url: str
    reason: str  # gone, failing
    delivery_id: uuid.UUID | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    disabled_at: datetime
