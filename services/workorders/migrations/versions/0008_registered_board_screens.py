"""registered board screens: TVs the foreman registers, each with its own revocable
token (only the SHA-256 of its secret is stored)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 05:05:28.486562
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "board_screen",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("branch", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("variant", sa.String(length=16), nullable=False),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", shared.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=64), nullable=True),
        sa.Column("last_seen_at", shared.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_board_screen_branch_created", "board_screen", ["branch", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_board_screen_branch_created", table_name="board_screen")
    op.drop_table("board_screen")
