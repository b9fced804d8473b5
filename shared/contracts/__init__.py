"""Every event contract of the platform, in one place: one module per producing service.

Producers build these; consumers receive them. Fields are only ever added (optional);
a breaking change gets a new `.v2` class beside the old one. Import contracts from here.
"""

from shared.contracts.common import CustomerSnapshot, EstimateLine, VehicleSnapshot
from shared.contracts.followup import (
    ComebackRecorded,
    ComplaintEscalated,
    ComplaintOpened,
    ReminderSent,
    ServqualAnswer,
    SurveyAnswered,
    VisitClosed,
)
from shared.contracts.reception import (
    AppointmentBooked,
    AppointmentClosed,
    ConsentRef,
    CustomerRegistered,
    CustomerUpdated,
    DamageMarkRef,
    EstimateApproved,
    IntakeInspected,
    IntakeOpened,
    VehicleOwnerChanged,
    VehicleRegistered,
)
from shared.contracts.records import LoanOverdue, PaymentConfirmed, WebhookEndpointDisabled
from shared.contracts.workorders import (
    DeliveredJob,
    ExtraWorkFound,
    InvoiceLine,
    JobClocked,
    PaymentTaken,
    PayTypeTotal,
    QcRecorded,
    RepairOrderAtRisk,
    RepairOrderDelivered,
    RepairOrderOpened,
    RepairOrderPromiseChanged,
    RepairOrderReady,
    RepairOrderSettled,
)

__all__ = [
    "AppointmentBooked",
    "AppointmentClosed",
    "ComebackRecorded",
    "ComplaintEscalated",
    "ComplaintOpened",
    "ConsentRef",
    "CustomerRegistered",
    "CustomerSnapshot",
    "CustomerUpdated",
    "DamageMarkRef",
    "DeliveredJob",
    "EstimateApproved",
    "EstimateLine",
    "ExtraWorkFound",
    "IntakeInspected",
    "IntakeOpened",
    "InvoiceLine",
    "JobClocked",
    "LoanOverdue",
    "PayTypeTotal",
    "PaymentConfirmed",
    "PaymentTaken",
    "QcRecorded",
    "ReminderSent",
    "RepairOrderAtRisk",
    "RepairOrderDelivered",
    "RepairOrderOpened",
    "RepairOrderPromiseChanged",
    "RepairOrderReady",
    "RepairOrderSettled",
    "ServqualAnswer",
    "SurveyAnswered",
    "VehicleOwnerChanged",
    "VehicleRegistered",
    "VehicleSnapshot",
    "VisitClosed",
    "WebhookEndpointDisabled",
]
