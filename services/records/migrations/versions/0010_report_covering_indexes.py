"""report covering indexes

The month's report reads revenue per pay type and day, technicians' hours per day and per
job, and the follow-up of delivered orders from indexes that carry the summed columns, so a
branch's month with 20,000 repair orders is read without visiting the table rows.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 02:15:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, index, columns before, columns after)
CHANGES = [
    (
        "report_order",
        "ix_report_order_branch_delivered",
        ["branch", "delivered_at"],
        ["branch", "delivered_at", "promised_at", "has_fix", "repair_order_id"],
    ),
    (
        "report_invoice_total",
        "ix_report_invoice_total_branch_settled",
        ["branch", "settled_at"],
        ["branch", "settled_at", "pay_type", "kind", "net_cents", "centihours"],
    ),
    (
        "report_clock",
        "ix_report_clock_branch_ended",
        ["branch", "ended_at"],
        ["branch", "ended_at", "technician_id", "centihours"],
    ),
    (
        "report_job",
        "ix_report_job_branch_delivered",
        ["branch", "delivered_at"],
        ["branch", "delivered_at", "technician_id", "flat_rate_centihours", "job_id"],
    ),
    ("report_clock", "ix_report_clock_job", ["job_id"], ["job_id", "centihours"]),
    ("report_visit", "ix_report_visit_order", ["repair_order_id"], ["repair_order_id", "reached"]),
]


def upgrade() -> None:
    for table, index, _, after in CHANGES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(index)
            batch_op.create_index(index, after, unique=False)


def downgrade() -> None:
    for table, index, before, _ in reversed(CHANGES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(index)
            batch_op.create_index(index, before, unique=False)
