"""visits by customer

`GET /visits?customer_id=` lists one customer's visits soonest due first; the index
keeps it a short walk whatever the branch's size.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 20:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_visit_customer", "visit", ["customer_id", "due_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_visit_customer", table_name="visit")
