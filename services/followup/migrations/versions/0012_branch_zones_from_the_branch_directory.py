"""branch zones from the branch directory

`branch_zone`: a branch's time zone as reception's `reception.branch.changed.v1` says
it (the newest version seen); `zone_of` prefers it to the settings.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
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


def downgrade() -> None:
    op.drop_table("branch_zone")
