"""customer messages due in order

The sender's lease reads pending messages by (next_attempt_at, id): with id in the index
it stops after a batch instead of sorting every pending message on each lease.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 00:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_customer_message_due", table_name="customer_message")
    op.create_index(
        "ix_customer_message_due", "customer_message", ["status", "next_attempt_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_customer_message_due", table_name="customer_message")
    op.create_index("ix_customer_message_due", "customer_message", ["status", "next_attempt_at"])
