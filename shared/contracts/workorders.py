"""Events workorders publishes."""

import uuid
from datetime import datetime

from shared.events import Contract


class RepairOrderOpened(Contract):
    type = "workorders.repair_order.opened.v1"

    repair_order_id: uuid.UUID
    number: str
    branch: str
    intake_id: uuid.UUID
    customer_id: uuid.UUID
    vehicle_id: uuid.UUID
    vin: str
    status: str
    opened_at: datetime
