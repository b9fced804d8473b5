"""Which fields of a repair order and a job each role sees: the workshop floor the work and
the vehicle, the dispatcher the work and the promise, the cashier the money. The README's
access table says the same and a test holds the API to it."""

from shared.access import EVERYTHING, Projections
from shared.auth import Role

VIEWS = {
    # An estimate line without its price: what the workshop needs to do the work.
    "line-work": "line_id, kind, description, op_code, op_group, job_kind, flat_rate_hours, "
    "part_number, quantity, pay_type, extra_work_id",
    "job-work": "id, repair_order_id, line_id, op_code, op_group, description, kind, "
    "pay_type, flat_rate_hours, parts(@line-work), extra_work_id, status, technician_id, bay, "
    "planned_start_at, pause_reason, rework_count, road_test, done_at, actual_hours, "
    "parts_eta_at, version",
    # The order on the workshop floor: the vehicle and the work, no customer, no money.
    "order-work": "id, number, branch, status, vehicle_id, vin, plate, odometer_km, advisor, "
    "opened_at, promised_at, projected_finish_at, version, jobs(@job-work), part_lines, "
    "extra_work(id, repair_order_id, job_id, found_by, findings, photo_file_ids, "
    "proposed_lines(@line-work), status, found_at, answered_at)",
    # The dispatcher's: the work, plus whom the car belongs to and what was promised.
    "order-dispatch": "@order-work, intake_id, customer_name, promises, at_risk_since, "
    "customer_told_at, other_lines(@line-work), delivered_at",
    # The cashier's: the bill and who pays it, not the workshop's internals.
    "order-money": "id, number, branch, status, customer_id, customer_name, vehicle_id, vin, "
    "plate, advisor, opened_at, currency, declined_lines, other_lines, settled_at, "
    "delivered_at, invoice_number, invoice_prints, paid_at, version, jobs(id, line_id, "
    "op_code, description, kind, pay_type, flat_rate_hours, parts, status, actual_hours), "
    "invoice, erp_paid, paid, invoice_print_log",
}

_ALL = EVERYTHING
_ORDER_READ = {
    Role.advisor: _ALL,
    Role.manager: _ALL,
    Role.foreman: "order-dispatch",
    Role.technician: "order-work",
    Role.qc: "order-work",
    Role.cashier: "order-money",
}
_ORDER_PROMISE = {Role.advisor: _ALL, Role.manager: _ALL, Role.foreman: "order-dispatch"}

PROJECTIONS = Projections(
    views=VIEWS,
    operations={
        "GET /repair-orders": _ORDER_READ,
        "GET /repair-orders/{order_id}": _ORDER_READ,
        "GET /repair-orders/at-risk": _ORDER_PROMISE,
        "POST /repair-orders/{order_id}/promise": _ORDER_PROMISE,
        "POST /repair-orders/{order_id}/transitions": _ORDER_PROMISE,
        "POST /repair-orders/{order_id}/settlement": {
            Role.manager: _ALL,
            Role.cashier: "order-money",
        },
        "GET /jobs/{job_id}": {
            Role.advisor: _ALL,
            Role.manager: _ALL,
            Role.cashier: _ALL,
            Role.foreman: "job-work",
            Role.technician: "job-work",
            Role.qc: "job-work",
        },
        "PUT /jobs/{job_id}/assignment": {Role.manager: _ALL, Role.foreman: "job-work"},
    },
)
