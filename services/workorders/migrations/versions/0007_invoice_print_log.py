"""invoice print log: who printed an order's invoice when (prints counted before this
revision stay counted on the order but are not listed)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 02:46:52.594756
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "invoice_print",
        sa.Column("repair_order_id", sa.Uuid(), nullable=False),
        sa.Column("printed", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("branch", sa.String(length=32), nullable=False),
        sa.Column("printed_at", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("printed_by", sa.String(length=64), nullable=False),
        sa.Column("printed_by_name", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["repair_order_id"], ["repair_order.id"]),
        sa.PrimaryKeyConstraint("repair_order_id", "printed"),
    )


def downgrade() -> None:
    op.drop_table("invoice_print")
