"""board changes pending: on PostgreSQL writers commit their board changes here, side by
side, and the feed moves them into board_change one mover at a time

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 12:00:00
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
    op.create_table(
        "board_pending",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("branch", sa.String(length=32), nullable=False),
        sa.Column("repair_order_id", sa.Uuid(), nullable=False),
        sa.Column("changed_at", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    # Changes still pending go to the log, which the writers of the previous revision use.
    op.execute(
        "INSERT INTO board_change (branch, repair_order_id, changed_at) "
        "SELECT branch, repair_order_id, changed_at FROM board_pending ORDER BY id"
    )
    op.drop_table("board_pending")
