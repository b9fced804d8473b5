"""library title vector and search index version

PostgreSQL keeps a second, small tsvector of the title (A) and tags (B) with its own GIN
index, so the search's first tier (every word in the title or tags) reads only those, and
an index on `updated_at`, so the search ranks the newest matches without reading every
matching row (on PostgreSQL it includes what the title tier reads, so that tier walks the
index alone). `search_index_version` says how a document's index entry was written: every
existing document starts at 0 (stale) and is re-indexed in batches by the records service
after start-up (or `python -m services.records.reindex`), not inside this migration.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("library_document", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "title_vector",
                postgresql.TSVECTOR().with_variant(sa.Text(), "sqlite"),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column("search_index_version", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.create_index(
            "ix_library_document_title_search",
            ["title_vector"],
            unique=False,
            postgresql_using="gin",
        )
        batch_op.create_index(
            "ix_library_document_updated_at",
            ["updated_at"],
            unique=False,
            postgresql_include=[
                "id",
                "branch",
                "confidential",
                "allowed_roles",
                "category",
                "title_vector",
            ],
        )


def downgrade() -> None:
    with op.batch_alter_table("library_document", schema=None) as batch_op:
        batch_op.drop_index("ix_library_document_updated_at")
        batch_op.drop_index("ix_library_document_title_search", postgresql_using="gin")
        batch_op.drop_column("search_index_version")
        batch_op.drop_column("title_vector")
