"""customer archive: customer cards, erasures, visit links

The customer's card (newest details, erased on request), the record of each erasure, and
the repair order an entry belongs to, so entries that name only the visit or the case
find their vehicle and customer whatever order the events come in.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 00:29:27.351579
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
        "archived_customer",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("branch", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("mobile", sa.String(length=32), nullable=True),
        sa.Column("preferred_channel", sa.String(length=20), nullable=True),
        sa.Column("language", sa.String(length=10), nullable=True),
        sa.Column("as_of", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("erased_at", shared.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    with op.batch_alter_table("archived_customer", schema=None) as batch_op:
        batch_op.create_index("ix_archived_customer_branch", ["branch"], unique=False)

    op.create_table(
        "customer_erasure",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("branch", sa.String(length=32), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("request_channel", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("erased_by", sa.String(length=64), nullable=False),
        sa.Column("erased_by_name", sa.String(length=100), nullable=False),
        sa.Column("erased_at", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("entries_anonymised", sa.Integer(), nullable=False),
        sa.Column("entries_kept_for_law", sa.Integer(), nullable=False),
        sa.Column("vehicles_anonymised", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("customer_erasure", schema=None) as batch_op:
        batch_op.create_index("ix_customer_erasure_customer", ["customer_id"], unique=False)

    with op.batch_alter_table("timeline_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("repair_order_id", sa.Uuid(), nullable=True))
        batch_op.create_index("ix_timeline_entry_reference", ["reference_id"], unique=False)
        batch_op.create_index("ix_timeline_entry_repair_order", ["repair_order_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("timeline_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_timeline_entry_repair_order")
        batch_op.drop_index("ix_timeline_entry_reference")
        batch_op.drop_column("repair_order_id")

    with op.batch_alter_table("customer_erasure", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_erasure_customer")

    op.drop_table("customer_erasure")
    with op.batch_alter_table("archived_customer", schema=None) as batch_op:
        batch_op.drop_index("ix_archived_customer_branch")

    op.drop_table("archived_customer")
