"""timeline entries know their intake, booking and invoice

What entries of one visit find each other by, as indexed columns: the intake an entry came
from (intake.opened, intake.inspected, estimate.approved, repair_order.opened), the booking
an intake took up (intake.opened) and the invoice (repair_order.settled,
payment.confirmed). The archive's handlers used to match JSON fields of the summary, and
scanned the branch's whole timeline for every car that came in. Filled from the entries
already archived.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 18:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UUID_FROM_SUMMARY = {"intake_id": ("estimate.approved", "repair_order.opened"),
                      "appointment_id": ("intake.opened",)}  # fmt: skip


def upgrade() -> None:
    with op.batch_alter_table("timeline_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("intake_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("appointment_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("invoice_number", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_timeline_entry_intake", ["intake_id"], unique=False)
        batch_op.create_index("ix_timeline_entry_appointment", ["appointment_id"], unique=False)
        batch_op.create_index("ix_timeline_entry_invoice", ["invoice_number"], unique=False)
    op.execute(
        "UPDATE timeline_entry SET intake_id = reference_id"
        " WHERE kind IN ('intake.opened', 'intake.inspected')"
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    for column, kinds in _UUID_FROM_SUMMARY.items():
        listed = ", ".join(f"'{kind}'" for kind in kinds)
        if postgres:
            op.execute(
                f"UPDATE timeline_entry SET {column} = CAST(summary ->> '{column}' AS UUID)"
                f" WHERE kind IN ({listed}) AND summary ->> '{column}'"
                " ~ '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$'"
            )
        else:  # a UUID column holds 32 hex digits on SQLite
            op.execute(
                f"UPDATE timeline_entry"
                f" SET {column} = replace(json_extract(summary, '$.{column}'), '-', '')"
                f" WHERE kind IN ({listed}) AND length(json_extract(summary, '$.{column}')) = 36"
            )
    invoice = (
        "summary ->> 'invoice_number'" if postgres else "json_extract(summary, '$.invoice_number')"
    )
    op.execute(
        f"UPDATE timeline_entry SET invoice_number = {invoice}"
        " WHERE kind IN ('repair_order.settled', 'payment.confirmed')"
    )


def downgrade() -> None:
    with op.batch_alter_table("timeline_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_timeline_entry_invoice")
        batch_op.drop_index("ix_timeline_entry_appointment")
        batch_op.drop_index("ix_timeline_entry_intake")
        batch_op.drop_column("invoice_number")
        batch_op.drop_column("appointment_id")
        batch_op.drop_column("intake_id")
