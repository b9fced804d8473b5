"""the branch directory and its staff roster

`branch`: one row per branch (zone, opening hours, tax rate, daily capacity, follow-up
day, targets); `staff_member`: the people of a branch (roles, skills, bay, working hours
per weekday, days off), keyed by the `sub` of their token.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.types

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "branch",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("business_hours", sa.JSON(), nullable=False),
        sa.Column("tax_rate", sa.Numeric(5, 4), nullable=False),
        sa.Column("daily_bays", sa.Integer(), nullable=False),
        sa.Column("daily_technician_hours", sa.Numeric(7, 2), nullable=False),
        sa.Column("follow_up_day", sa.Integer(), nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("changed_by", sa.String(length=64), nullable=False),
        sa.Column("changed_at", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "staff_member",
        sa.Column("branch", sa.String(length=32), nullable=False),
        sa.Column("staff_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("bay", sa.String(length=32), nullable=True),
        sa.Column("working_hours", sa.JSON(), nullable=False),
        sa.Column("days_off", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("changed_by", sa.String(length=64), nullable=False),
        sa.Column("changed_at", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("branch", "staff_id"),
    )


def downgrade() -> None:
    op.drop_table("staff_member")
    op.drop_table("branch")
