"""Every event contract of the platform, in one place: one module per producing service.

Producers build these; consumers receive them. Fields are only ever added (optional);
a breaking change gets a new `.v2` class beside the old one. Import contracts from here.
"""

from shared.contracts.common import CustomerSnapshot, EstimateLine, VehicleSnapshot
from shared.contracts.followup import ComplaintEscalated, ComplaintOpened
from shared.contracts.reception import (
    ConsentRef,
    CustomerRegistered,
    EstimateApproved,
    IntakeOpened,
    VehicleRegistered,
)
from shared.contracts.records import LoanOverdue
from shared.contracts.workorders import (
    DeliveredJob,
    ExtraWorkFound,
    InvoiceLine,
    PaymentTaken,
    PayTypeTotal,
    RepairOrderAtRisk,
    RepairOrderDelivered,
    RepairOrderOpened,
    RepairOrderSettled,
)

__all__ = [
    "ComplaintEscalated",
    "ComplaintOpened",
    "ConsentRef",
    "CustomerRegistered",
    "CustomerSnapshot",
    "DeliveredJob",
    "EstimateApproved",
    "EstimateLine",
    "ExtraWorkFound",
    "IntakeOpened",
    "InvoiceLine",
    "LoanOverdue",
    "PayTypeTotal",
    "PaymentTaken",
    "RepairOrderAtRisk",
    "RepairOrderDelivered",
    "RepairOrderOpened",
    "RepairOrderSettled",
    "VehicleRegistered",
    "VehicleSnapshot",
]
