"""Which fields of a visit and a complaint each role sees: the foreman learns what the
customer said about the work, not how to reach them or what they were paid back. The
README's access table says the same and a test holds the API to it."""

from shared.access import EVERYTHING, Projections
from shared.auth import Role

VIEWS = {
    "visit-work": "id, branch, repair_order_id, repair_order_number, customer_id, vehicle_id, "
    "vin, plate, advisor, status, outcome, attempts, delivered_at, due_at, expires_at, "
    "last_attempt_at, closed_at",
    "complaint-work": "id, branch, source, severity, category, status, description, "
    "customer_id, repair_order_id, repair_order_number, technician_id, survey_id, owner, "
    "opened_by, escalated_to, root_cause, version, due_at, opened_at, escalated_at, "
    "resolved_at, closed_at, updated_at, overdue",
}

_DESK = {Role.followup_agent: EVERYTHING, Role.manager: EVERYTHING, Role.advisor: EVERYTHING}

PROJECTIONS = Projections(
    views=VIEWS,
    operations={
        "GET /visits": {**_DESK, Role.foreman: "visit-work"},
        "GET /visits/{visit_id}": {**_DESK, Role.foreman: "visit-work"},
        "GET /complaints": {**_DESK, Role.foreman: "complaint-work"},
        "GET /complaints/{complaint_id}": {**_DESK, Role.foreman: "complaint-work"},
    },
)
