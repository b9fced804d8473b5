"""service reminders sent

How often a service reminder went out to the customer, and the last time and channel.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 01:49:12.391016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("service_reminder", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("times_sent", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("sent_channel", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("sent_at", shared.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("service_reminder", schema=None) as batch_op:
        batch_op.drop_column("sent_at")
        batch_op.drop_column("sent_channel")
        batch_op.drop_column("times_sent")
