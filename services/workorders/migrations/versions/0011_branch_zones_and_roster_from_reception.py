"""branch zones and the staff roster, kept from reception's events

`branch_zone`: a branch's time zone (`reception.branch.changed.v1`); `roster_member`: a
member of a branch's staff (`reception.staff_member.changed.v1`), which dispatch checks.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 23:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "branch_zone",
        sa.Column("branch", sa.String(length=32), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("branch"),
    )
    op.create_table(
        "roster_member",
        sa.Column("branch", sa.String(length=32), nullable=False),
        sa.Column("staff_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("bay", sa.String(length=32), nullable=True),
        sa.Column("working_hours", sa.JSON(), nullable=False),
        sa.Column("days_off", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("branch", "staff_id"),
    )


def downgrade() -> None:
    op.drop_table("roster_member")
    op.drop_table("branch_zone")
