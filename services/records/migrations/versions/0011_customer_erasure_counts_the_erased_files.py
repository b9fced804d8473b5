"""customer erasure counts the erased files

An erasure also deletes the stored files only the customer's records referred to (intake
photos, signatures); the erasure record says how many.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 02:42:19
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer_erasure", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("files_erased", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("customer_erasure", schema=None) as batch_op:
        batch_op.drop_column("files_erased")
