"""customer messages

One row per (cause, channel, recipient), so each message is sent once; senders lease due
rows through `lease_until`.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 21:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    utc = shared.types.UTCDateTime(timezone=True)
    op.create_table(
        "customer_message",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("branch", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("cause", sa.String(length=120), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", utc, nullable=False),
        sa.Column("lease_until", utc, nullable=True),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("provider_message_id", sa.String(length=128), nullable=True),
        sa.Column("provider_status", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", utc, nullable=False),
        sa.Column("sent_at", utc, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("cause", "channel", "recipient", name="ux_customer_message_cause"),
    )
    op.create_index("ix_customer_message_due", "customer_message", ["status", "next_attempt_at"])
    op.create_index(
        "ix_customer_message_customer", "customer_message", ["customer_id", "created_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_customer_message_customer", table_name="customer_message")
    op.drop_index("ix_customer_message_due", table_name="customer_message")
    op.drop_table("customer_message")
