"""customer names in byte order on PostgreSQL

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 02:02:00

The desk's name search is a prefix range on (branch, name); it is exact only in byte
order, which SQLite uses anyway. On PostgreSQL the column gets collation "C" (the index
is rebuilt with it).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute('ALTER TABLE customer ALTER COLUMN name TYPE VARCHAR(100) COLLATE "C"')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute('ALTER TABLE customer ALTER COLUMN name TYPE VARCHAR(100) COLLATE "default"')
