"""approval pages are counted per client address, not per link

`approval_client` holds each client address's uses and failures in its current minute;
the per-link counters (`approval_link.window_started_at`, `attempts`) go: a stranger
could use them up and lock the customer out of their own link.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.types

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "approval_client",
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("window_started_at", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("client"),
    )
    op.create_index("ix_approval_client_window", "approval_client", ["window_started_at"])
    with op.batch_alter_table("approval_link") as batch:
        batch.drop_column("window_started_at")
        batch.drop_column("attempts")


def downgrade() -> None:
    with op.batch_alter_table("approval_link") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("window_started_at", shared.types.UTCDateTime(timezone=True), nullable=True)
        )
    op.drop_index("ix_approval_client_window", table_name="approval_client")
    op.drop_table("approval_client")
