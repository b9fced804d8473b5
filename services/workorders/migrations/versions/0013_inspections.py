"""multi-point inspection: a template per branch and one inspection per repair order

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 00:00:00
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
        "inspection_template",
        sa.Column("branch", sa.String(length=32), nullable=False),
        sa.Column("areas", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("branch"),
    )
    op.create_table(
        "inspection",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("repair_order_id", sa.Uuid(), nullable=False),
        sa.Column("branch", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("started_by", sa.String(length=64), nullable=False),
        sa.Column("started_at", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_by", sa.String(length=64), nullable=True),
        sa.Column("completed_at", shared.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("extra_work_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["repair_order_id"], ["repair_order.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repair_order_id"),
    )


def downgrade() -> None:
    op.drop_table("inspection")
    op.drop_table("inspection_template")
