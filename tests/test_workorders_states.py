"""The repair order's, the job's and the parts line's state machines, over every pair."""

import itertools

import pytest

from services.workorders.states import (
    JOB_TRANSITIONS,
    ORDER_TRANSITIONS,
    PART_TRANSITIONS,
    JobStatus,
    PartStatus,
    RepairOrderStatus,
    move_job,
    move_order,
    move_part,
)
from shared.problems import Conflict

Ord, J = RepairOrderStatus, JobStatus

ORDER_ALLOWED = {
    (Ord.draft, Ord.open),
    (Ord.draft, Ord.cancelled),
    (Ord.open, Ord.in_progress),
    (Ord.open, Ord.cancelled),
    (Ord.in_progress, Ord.waiting_parts),
    (Ord.in_progress, Ord.qc),
    (Ord.waiting_parts, Ord.in_progress),
    (Ord.qc, Ord.in_progress),
    (Ord.qc, Ord.washing),
    (Ord.qc, Ord.ready),
    (Ord.washing, Ord.ready),
    (Ord.ready, Ord.in_progress),
    (Ord.ready, Ord.settled),
    (Ord.settled, Ord.delivered),
}

JOB_ALLOWED = {
    (J.pending, J.assigned),
    (J.pending, J.cancelled),
    (J.assigned, J.in_progress),
    (J.assigned, J.cancelled),
    (J.in_progress, J.paused),
    (J.in_progress, J.done),
    (J.paused, J.in_progress),
    (J.done, J.qc_passed),
    (J.done, J.qc_failed),
    (J.qc_failed, J.rework),
    (J.rework, J.in_progress),
}


def test_every_state_has_a_row():
    assert set(ORDER_TRANSITIONS) == set(Ord)
    assert set(JOB_TRANSITIONS) == set(J)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(Ord, Ord)))
def test_order_transition(current: RepairOrderStatus, target: RepairOrderStatus):
    if (current, target) in ORDER_ALLOWED:
        assert move_order(current, target) == target
    else:
        with pytest.raises(Conflict) as refused:
            move_order(current, target)
        assert refused.value.status == 409
        assert refused.value.extra["current_status"] == current


@pytest.mark.parametrize(("current", "target"), list(itertools.product(J, J)))
def test_job_transition(current: JobStatus, target: JobStatus):
    if (current, target) in JOB_ALLOWED:
        assert move_job(current, target) == target
    else:
        with pytest.raises(Conflict):
            move_job(current, target)


def test_terminal_states_go_nowhere():
    for state in (Ord.delivered, Ord.cancelled):
        assert not ORDER_TRANSITIONS[state]
    for job_state in (J.qc_passed, J.cancelled):
        assert not JOB_TRANSITIONS[job_state]


P = PartStatus
PART_ALLOWED = {
    (P.requested, P.ordered),
    (P.requested, P.issued),
    (P.requested, P.cancelled),
    (P.ordered, P.issued),
    (P.ordered, P.cancelled),
    (P.issued, P.returned),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(P, P)))
def test_part_transition(current: PartStatus, target: PartStatus):
    assert set(PART_TRANSITIONS) == set(P)
    if (current, target) in PART_ALLOWED:
        assert move_part(current, target) == target
    else:
        with pytest.raises(Conflict):
            move_part(current, target)
