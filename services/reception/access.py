"""Which fields of a customer and an estimate each role sees: the workshop floor's
dispatcher plans the work without the customer's numbers or the prices. The README's
access table says the same and a test holds the API to it."""

from shared.access import EVERYTHING, Projections
from shared.auth import Role

VIEWS = {
    # Whose car it is, without a way to reach them.
    "customer-name": "id, branch, name, company, account_kind, language, version",
    "hit-work": "vehicle_id, vin, plate, make, model, customer_id, customer_name, created_at",
    # An estimate line without its price: the work the customer agreed to.
    "line-work": "line_id, kind, description, op_code, op_group, job_kind, flat_rate_hours, "
    "part_number, quantity, pay_type, offer, extra_work_id, answer",
    # A day's bookings planned on the floor: the car and whose it is, not their number.
    "appointment-work": "id, branch, vehicle_id, customer_id, starts_at, day, planned_hours, "
    "planned_jobs, concerns, status, booked_by, created_at, version, plate, vin, make, model, "
    "customer_name",
    "estimate-work": "id, branch, intake_id, customer_id, vehicle_id, advisor, revision, "
    "current_revision, status, promised_at, note, extra_work_id, repair_order_id, "
    "lines(@line-work), approved_at, created_at, etag",
}


_DESK = (Role.advisor, Role.manager, Role.cashier, Role.followup_agent, Role.records_clerk)


def _desk_and(view: str) -> dict[Role, str]:
    """The desk's roles see everything; the foreman sees `view`."""
    return {**dict.fromkeys(_DESK, EVERYTHING), Role.foreman: view}


PROJECTIONS = Projections(
    views=VIEWS,
    operations={
        "GET /customers": _desk_and("customer-name"),
        "GET /customers/{customer_id}": _desk_and("customer-name"),
        "GET /search": _desk_and("hit-work"),
        "GET /appointments": _desk_and("appointment-work"),
        "GET /estimates/{estimate_id}": _desk_and("estimate-work"),
        "GET /intakes/{intake_id}/estimate": _desk_and("estimate-work"),
        "GET /estimates/{estimate_id}/revisions/{number}": _desk_and("estimate-work"),
    },
)
