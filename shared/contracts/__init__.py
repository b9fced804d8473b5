"""Every event contract of the platform, in one place: one module per producing service.

Producers build these; consumers receive them. Fields are only ever added (optional);
a breaking change gets a new `.v2` class beside the old one. Import contracts from here.
"""

from shared.contracts.common import CustomerSnapshot, VehicleSnapshot
from shared.contracts.followup import ComplaintEscalated, ComplaintOpened
from shared.contracts.reception import CustomerRegistered, IntakeOpened, VehicleRegistered
from shared.contracts.records import LoanOverdue
from shared.contracts.workorders import DeliveredJob, RepairOrderDelivered, RepairOrderOpened

__all__ = [
    "ComplaintEscalated",
    "ComplaintOpened",
    "CustomerRegistered",
    "CustomerSnapshot",
    "DeliveredJob",
    "IntakeOpened",
    "LoanOverdue",
    "RepairOrderDelivered",
    "RepairOrderOpened",
    "VehicleRegistered",
    "VehicleSnapshot",
]
