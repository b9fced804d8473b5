"""one open service reminder per vehicle

Two deliveries of one car handled at the same moment by two replicas could each supersede
the reminder they saw and leave two open. The vehicle's newest open reminder stays open
(the one created last), any older one is marked superseded, and a unique partial index
keeps it so.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status = 'open'"


def upgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE service_reminder SET status = 'superseded'"
            " WHERE status = 'open' AND EXISTS ("
            "  SELECT 1 FROM service_reminder AS newer"
            "  WHERE newer.vehicle_id = service_reminder.vehicle_id"
            "  AND newer.status = 'open'"
            "  AND (newer.created_at > service_reminder.created_at"
            "   OR (newer.created_at = service_reminder.created_at"
            "    AND newer.id > service_reminder.id)))"
        )
    )
    with op.batch_alter_table("service_reminder", schema=None) as batch_op:
        batch_op.create_index(
            "ux_service_reminder_open_vehicle",
            ["vehicle_id"],
            unique=True,
            sqlite_where=sa.text(OPEN),
            postgresql_where=sa.text(OPEN),
        )


def downgrade() -> None:
    with op.batch_alter_table("service_reminder", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_service_reminder_open_vehicle",
            sqlite_where=sa.text(OPEN),
            postgresql_where=sa.text(OPEN),
        )
