"""The two state machines of the workshop: a repair order's and a job's allowed moves."""

from enum import StrEnum

from shared.problems import Conflict


class RepairOrderStatus(StrEnum):
    draft = "draft"
    open = "open"
    in_progress = "in_progress"
    waiting_parts = "waiting_parts"
    qc = "qc"
    washing = "washing"
    ready = "ready"
    settled = "settled"
    delivered = "delivered"
    cancelled = "cancelled"


class JobStatus(StrEnum):
    pending = "pending"
    assigned = "assigned"
    in_progress = "in_progress"
    paused = "paused"
    done = "done"
    qc_passed = "qc_passed"
    qc_failed = "qc_failed"
    rework = "rework"
    cancelled = "cancelled"


class PartStatus(StrEnum):
    requested = "requested"
    ordered = "ordered"
    issued = "issued"
    returned = "returned"
    cancelled = "cancelled"


_O = RepairOrderStatus
ORDER_TRANSITIONS: dict[RepairOrderStatus, frozenset[RepairOrderStatus]] = {
    _O.draft: frozenset({_O.open, _O.cancelled}),
    _O.open: frozenset({_O.in_progress, _O.cancelled}),
    _O.in_progress: frozenset({_O.waiting_parts, _O.qc}),
    _O.waiting_parts: frozenset({_O.in_progress}),
    # A failed QC or extra work sends the car back to the workshop.
    _O.qc: frozenset({_O.in_progress, _O.washing, _O.ready}),
    _O.washing: frozenset({_O.ready}),
    _O.ready: frozenset({_O.in_progress, _O.settled}),
    _O.settled: frozenset({_O.delivered}),
    _O.delivered: frozenset(),
    _O.cancelled: frozenset(),
}

_J = JobStatus
JOB_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    _J.pending: frozenset({_J.assigned, _J.cancelled}),
    _J.assigned: frozenset({_J.in_progress, _J.cancelled}),
    _J.in_progress: frozenset({_J.paused, _J.done}),
    _J.paused: frozenset({_J.in_progress}),
    _J.done: frozenset({_J.qc_passed, _J.qc_failed}),
    _J.qc_failed: frozenset({_J.rework}),
    _J.rework: frozenset({_J.in_progress}),
    _J.qc_passed: frozenset(),
    _J.cancelled: frozenset(),
}

_P = PartStatus
PART_TRANSITIONS: dict[PartStatus, frozenset[PartStatus]] = {
    _P.requested: frozenset({_P.ordered, _P.issued, _P.cancelled}),
    _P.ordered: frozenset({_P.issued, _P.cancelled}),
    _P.issued: frozenset({_P.returned}),
    _P.returned: frozenset(),
    _P.cancelled: frozenset(),
}

# Jobs whose technician may still change (reassignment keeps the status).
REASSIGNABLE = frozenset({_J.pending, _J.assigned, _J.paused, _J.rework})
# Order states in which the workshop may still add or start work.
WORKING = frozenset({_O.open, _O.in_progress, _O.waiting_parts, _O.qc, _O.ready})


def can_move_order(current: RepairOrderStatus, target: RepairOrderStatus) -> bool:
    return target in ORDER_TRANSITIONS[current]


def can_move_job(current: JobStatus, target: JobStatus) -> bool:
    return target in JOB_TRANSITIONS[current]


def move_order(current: RepairOrderStatus, target: RepairOrderStatus) -> RepairOrderStatus:
    if not can_move_order(current, target):
        raise Conflict(
            f"a repair order cannot go from {current} to {target}",
            current_status=str(current),
            allowed=sorted(ORDER_TRANSITIONS[current]),
        )
    return target


def move_job(current: JobStatus, target: JobStatus) -> JobStatus:
    if not can_move_job(current, target):
        raise Conflict(
            f"a job cannot go from {current} to {target}",
            current_status=str(current),
            allowed=sorted(JOB_TRANSITIONS[current]),
        )
    return target


def move_part(current: PartStatus, target: PartStatus) -> PartStatus:
    if target not in PART_TRANSITIONS[current]:
        raise Conflict(
            f"a parts line cannot go from {current} to {target}",
            current_status=str(current),
            allowed=sorted(PART_TRANSITIONS[current]),
        )
    return target
