"""message reports and opt-outs

A sent message keeps the provider's delivery report (found by the provider's message
id); a recipient who opted out of a channel is never sent to on it again.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 23:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    utc = shared.types.UTCDateTime(timezone=True)
    with op.batch_alter_table("customer_message") as batch:
        batch.add_column(sa.Column("report_status", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("report_detail", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("reported_at", utc, nullable=True))
    op.create_index(
        "ix_customer_message_provider_id",
        "customer_message",
        ["provider", "provider_message_id"],
    )
    op.create_table(
        "message_opt_out",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("opted_out_at", utc, nullable=False),
        sa.PrimaryKeyConstraint("channel", "recipient"),
    )


def downgrade() -> None:
    op.drop_table("message_opt_out")
    op.drop_index("ix_customer_message_provider_id", table_name="customer_message")
    with op.batch_alter_table("customer_message") as batch:
        batch.drop_column("reported_at")
        batch.drop_column("report_detail")
        batch.drop_column("report_status")
