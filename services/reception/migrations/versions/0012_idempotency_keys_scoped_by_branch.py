"""idempotency keys are scoped by branch too

A key was the user's alone: the same person with a token for another branch and the same
key got the first branch's answer. The primary key becomes (user_id, branch, key). Records
written before carry an empty branch; they answer their retries in any of the user's
branches until housekeeping removes them (a day), so a retry across the upgrade is never
applied twice.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# PostgreSQL's name for the table's primary key. SQLite's is unnamed: the batch copy
# reflects it under the same name, so one drop and create serve both.
_PRIMARY_KEY = "idempotency_record_pkey"


def _primary_key(*columns: str) -> None:
    with op.batch_alter_table(
        "idempotency_record", naming_convention={"pk": _PRIMARY_KEY}
    ) as batch_op:
        batch_op.drop_constraint(_PRIMARY_KEY, type_="primary")
        batch_op.create_primary_key(_PRIMARY_KEY, list(columns))


def upgrade() -> None:
    with op.batch_alter_table("idempotency_record", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("branch", sa.String(length=32), nullable=False, server_default="")
        )
    _primary_key("user_id", "branch", "key")
    with op.batch_alter_table("idempotency_record", schema=None) as batch_op:
        batch_op.alter_column("branch", existing_type=sa.String(length=32), server_default=None)


def downgrade() -> None:
    # One record per user and key again: the oldest branch's stays.
    op.execute(
        "DELETE FROM idempotency_record WHERE EXISTS (SELECT 1 FROM idempotency_record AS o"
        " WHERE o.user_id = idempotency_record.user_id AND o.key = idempotency_record.key"
        " AND (o.created_at < idempotency_record.created_at OR"
        " (o.created_at = idempotency_record.created_at AND o.branch < idempotency_record.branch)))"
    )
    _primary_key("user_id", "key")
    with op.batch_alter_table("idempotency_record", schema=None) as batch_op:
        batch_op.drop_column("branch")
