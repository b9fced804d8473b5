"""library documents say where their text came from

`text_extraction`: typed, extracted, partial, unreadable or over_budget (the PDF's text
was not read within the page, time or memory budget). Documents written before say
nothing (null).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("library_document") as batch:
        batch.add_column(sa.Column("text_extraction", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("library_document") as batch:
        batch.drop_column("text_extraction")
