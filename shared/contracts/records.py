"""Events records publishes."""

import uuid
from datetime import date

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
