"""jobs, clocking, extra work, QC and settlement

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 00:25:04.295830
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Orders that exist already get the defaults: CNY, no promises or lines, version 1.
    op.create_table(
        "extra_work",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("repair_order_id", sa.Uuid(), nullable=False),
        sa.Column("branch", sa.String(length=32), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("found_by", sa.String(length=64), nullable=False),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column("photo_file_ids", sa.JSON(), nullable=False),
        sa.Column("proposed_lines", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("found_at", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", shared.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["repair_order_id"],
            ["repair_order.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("extra_work", schema=None) as batch_op:
        batch_op.create_index("ix_extra_work_order", ["repair_order_id"], unique=False)

    op.create_table(
        "job",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("repair_order_id", sa.Uuid(), nullable=False),
        sa.Column("branch", sa.String(length=32), nullable=False),
        sa.Column("line_id", sa.Uuid(), nullable=False),
        sa.Column("op_code", sa.String(length=32), nullable=False),
        sa.Column("op_group", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("pay_type", sa.String(length=16), nullable=False),
        sa.Column("line", sa.JSON(), nullable=False),
        sa.Column("parts", sa.JSON(), nullable=False),
        sa.Column("extra_work_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("technician_id", sa.String(length=64), nullable=True),
        sa.Column("bay", sa.String(length=32), nullable=True),
        sa.Column("planned_start_at", shared.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("pause_reason", sa.String(length=32), nullable=True),
        sa.Column("rework_count", sa.Integer(), nullable=False),
        sa.Column("road_test", sa.Boolean(), nullable=False),
        sa.Column("created_at", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", shared.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repair_order_id"],
            ["repair_order.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.create_index("ix_job_branch_technician", ["branch", "technician_id"], unique=False)
        batch_op.create_index("ix_job_order", ["repair_order_id"], unique=False)
        batch_op.create_index("ux_job_order_line", ["repair_order_id", "line_id"], unique=True)

    op.create_table(
        "qc_inspection",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("inspector", sa.String(length=64), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("checklist", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("road_test", sa.Boolean(), nullable=False),
        sa.Column("inspected_at", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["job.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("qc_inspection", schema=None) as batch_op:
        batch_op.create_index("ix_qc_inspection_job", ["job_id"], unique=False)

    op.create_table(
        "time_entry",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("branch", sa.String(length=32), nullable=False),
        sa.Column("technician_id", sa.String(length=64), nullable=False),
        sa.Column("started_at", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", shared.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("stop_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["job.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("time_entry", schema=None) as batch_op:
        batch_op.create_index("ix_time_entry_job", ["job_id"], unique=False)
        batch_op.create_index(
            "ix_time_entry_technician_started",
            ["branch", "technician_id", "started_at"],
            unique=False,
        )
        batch_op.create_index(
            "ux_time_entry_open_technician",
            ["technician_id"],
            unique=True,
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        )

    with op.batch_alter_table("repair_order", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("currency", sa.String(length=3), nullable=False, server_default="CNY")
        )
        batch_op.add_column(sa.Column("estimate_id", sa.Uuid(), nullable=True))
        batch_op.add_column(
            sa.Column("promised_at", shared.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("promises", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(
            sa.Column("declined_lines", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(
            sa.Column("other_lines", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(sa.Column("invoice", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("settled_at", shared.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("delivered_at", shared.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("handover", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("cancelled_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))

    # ### end Alembic commands ###


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table("repair_order", schema=None) as batch_op:
        batch_op.drop_column("version")
        batch_op.drop_column("cancelled_reason")
        batch_op.drop_column("handover")
        batch_op.drop_column("delivered_at")
        batch_op.drop_column("settled_at")
        batch_op.drop_column("invoice")
        batch_op.drop_column("other_lines")
        batch_op.drop_column("declined_lines")
        batch_op.drop_column("promises")
        batch_op.drop_column("promised_at")
        batch_op.drop_column("estimate_id")
        batch_op.drop_column("currency")

    with op.batch_alter_table("time_entry", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_time_entry_open_technician",
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        )
        batch_op.drop_index("ix_time_entry_technician_started")
        batch_op.drop_index("ix_time_entry_job")

    op.drop_table("time_entry")
    with op.batch_alter_table("qc_inspection", schema=None) as batch_op:
        batch_op.drop_index("ix_qc_inspection_job")

    op.drop_table("qc_inspection")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index("ux_job_order_line")
        batch_op.drop_index("ix_job_order")
        batch_op.drop_index("ix_job_branch_technician")

    op.drop_table("job")
    with op.batch_alter_table("extra_work", schema=None) as batch_op:
        batch_op.drop_index("ix_extra_work_order")

    op.drop_table("extra_work")
    # ### end Alembic commands ###
