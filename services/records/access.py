"""Which fields of a vehicle's history each role sees: the foreman what was done and when,
not what the entries say (invoice amounts, payments, the customer's words). The README's
access table says the same and a test holds the API to it."""

from shared.access import EVERYTHING, Projections
from shared.auth import Role

VIEWS = {
    "timeline-work": "vehicle_id, vin, plate, make, model_year, next_cursor, "
    "entries(id, kind, occurred_at, reference_id, vehicle_id, customer_id, repair_order_id)",
}

PROJECTIONS = Projections(
    views=VIEWS,
    operations={
        "GET /vehicles/{vehicle_id}/timeline": {
            Role.records_clerk: EVERYTHING,
            Role.advisor: EVERYTHING,
            Role.manager: EVERYTHING,
            Role.followup_agent: EVERYTHING,
            Role.foreman: "timeline-work",
        },
    },
)
