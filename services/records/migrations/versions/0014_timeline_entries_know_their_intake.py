"""timeline entries know their intake

The intake an entry came from (intake.opened, intake.inspected, estimate.approved,
repair_order.opened) as an indexed column. The archive handlers of an intake and of its
repair order find each other's entries by it; before, they matched a JSON field of the
summary and scanned the branch's whole timeline for every intake. Filled from the
entries already archived.

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


def upgrade() -> None:
    with op.batch_alter_table("timeline_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("intake_id", sa.Uuid(), nullable=True))
        batch_op.create_index("ix_timeline_entry_intake", ["intake_id"], unique=False)
    op.execute(
        "UPDATE timeline_entry SET intake_id = reference_id"
        " WHERE kind IN ('intake.opened', 'intake.inspected')"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE timeline_entry SET intake_id = CAST(summary ->> 'intake_id' AS UUID)"
            " WHERE kind IN ('estimate.approved', 'repair_order.opened')"
            " AND summary ->> 'intake_id' ~ '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$'"
        )
    else:  # a UUID column holds 32 hex digits on SQLite
        op.execute(
            "UPDATE timeline_entry"
            " SET intake_id = replace(json_extract(summary, '$.intake_id'), '-', '')"
            " WHERE kind IN ('estimate.approved', 'repair_order.opened')"
            " AND length(json_extract(summary, '$.intake_id')) = 36"
        )


def downgrade() -> None:
    with op.batch_alter_table("timeline_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_timeline_entry_intake")
        batch_op.drop_column("intake_id")
