"""library document makes

The makes a document's `applies_to` names, lowercased, on the document itself (JSONB on
PostgreSQL, included in the `updated_at` index), filled from library_applicability: a
search filtered by make checks the row it walks past instead of probing the rules for each.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 06:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INCLUDED = ["id", "branch", "confidential", "allowed_roles", "category", "title_vector"]


def upgrade() -> None:
    with op.batch_alter_table("library_document", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "makes",
                sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                server_default="[]",
                nullable=False,
            )
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE library_document d SET makes = m.makes FROM ("
            " SELECT document_id, jsonb_agg(DISTINCT make ORDER BY make) AS makes"
            " FROM library_applicability WHERE make IS NOT NULL GROUP BY document_id"
            ") m WHERE d.id = m.document_id"
        )
    else:
        op.execute(
            "UPDATE library_document SET makes = ("
            " SELECT json_group_array(make) FROM (SELECT DISTINCT make"
            "  FROM library_applicability a"
            "  WHERE a.document_id = library_document.id AND make IS NOT NULL ORDER BY make))"
            " WHERE EXISTS (SELECT 1 FROM library_applicability a"
            "  WHERE a.document_id = library_document.id AND make IS NOT NULL)"
        )
    with op.batch_alter_table("library_document", schema=None) as batch_op:
        batch_op.drop_index("ix_library_document_updated_at")
        batch_op.create_index(
            "ix_library_document_updated_at",
            ["updated_at"],
            unique=False,
            postgresql_include=[*_INCLUDED, "makes"],
        )


def downgrade() -> None:
    with op.batch_alter_table("library_document", schema=None) as batch_op:
        batch_op.drop_index("ix_library_document_updated_at")
        batch_op.create_index(
            "ix_library_document_updated_at",
            ["updated_at"],
            unique=False,
            postgresql_include=_INCLUDED,
        )
        batch_op.drop_column("makes")
