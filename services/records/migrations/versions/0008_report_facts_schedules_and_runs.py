"""report facts, schedules and runs

The management reports' facts, one table per kind of event (repair orders with their
settled totals per pay type, delivered jobs, clock segments, QC, appointments, follow-up
visits, surveys, comebacks, complaints), and the scheduled reports: schedules, runs (one
per schedule and period) and their generated files.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 01:48:12.229561
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_appointment",
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("branch", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("scheduled_for", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("as_of", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("booked_at", shared.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("closed_at", shared.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("appointment_id"),
    )
    with op.batch_alter_table("report_appointment", schema=None) as batch_op:
        batch_op.create_index(
            "ix_report_appointment_branch_scheduled", ["branch", "scheduled_for"], unique=False
        )

    op.create_table(
        "report_clock",
        sa.Column("clock_id", sa.Uuid(), nullable=False),
        sa.Column("repair_order_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("branch", sa.String(length=32), nullable=False),
        sa.Column("technician_id", sa.String(length=64), nullable=False),
        sa.Column("started_at", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("centihours", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("clock_id"),
    )
    with op.batch_alter_table("report_clock", schema=None) as batch_op:
        batch_op.create_index("ix_report_clock_branch_ended", ["branch", "ended_at"], unique=False)
        batch_op.create_index("ix_report_clock_job", ["job_id"], unique=False)

    op.create_table(
        "report_comeback",
        sa.Column("comeback_id", sa.Uuid(), nullable=False),
        sa.Column("branch", sa.String(length=32), nullable=False),
        sa.Column("repair_order_id", sa.Uuid(), nullable=False),
        sa.Column("earlier_repair_order_id", sa.Uuid(), nullable=False),
        sa.Column("op_group", sa.String(length=32), nullable=False),
        sa.Column("technician_id", sa.String(length=64), nullable=True),
        sa.Column("delivered_at", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("comeback_id"),
    )
    with op.batch_alter_table("report_comeback", schema=None) as batch_op:
        batch_op.create_index(
            "ix_report_comeback_branch_delivered", ["branch", "delivered_at"], unique=False
        )
        batch_op.create_index("ix_report_comeback_order", ["repair_order_id"], unique=False)

    op.create_table(
        "report_complaint",
        sa.Column("complaint_id", sa.Uuid(), nullable=False),
        sa.Column("branch", sa.String(length=32), nullable=False),
        sa.Column("repair_order_id", sa.Uuid(), nullable=True),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=True),
        sa.Column("opened_at", shared.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("severity_as_of", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("complaint_id"),
    )
    with op.batch_alter_table("report_complaint", schema=None) as batch_op:
        batch_op.create_index(
            "ix_report_complaint_branch_opened", ["branch", "opened_at"], unique=False
        )

    op.create_table(
        "report_invoice_total",
        sa.Column("repair_order_id", sa.Uuid(), nullable=False),
        sa.Column("pay_type", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("branch", sa.String(length=32), nullable=False),
        sa.Column("settled_at", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("net_cents", sa.BigInteger(), nullable=False),
        sa.Column("centihours", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("repair_order_id", "pay_type", "kind"),
    )
    with op.batch_alter_table("report_invoice_total", schema=None) as batch_op:
        batch_op.create_index(
            "ix_report_invoice_total_branch_settled", ["branch", "settled_at"], unique=False
        )

    op.create_table(
        "report_job",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("repair_order_id", sa.Uuid(), nullable=False),
        sa.Column("branch", sa.String(length=32), nullable=False),
        sa.Column("op_code", sa.String(length=32), nullable=False),
        sa.Column("op_group", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("technician_id", sa.String(length=64), nullable=True),
        sa.Column("flat_rate_centihours", sa.BigInteger(), nullable=False),
        sa.Column("delivered_at", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job_id"),
    )
    with op.batch_alter_table("report_job", schema=None) as batch_op:
        batch_op.create_index(
            "ix_report_job_branch_delivered", ["branch", "delivered_at"], unique=False
        )
        batch_op.create_index("ix_report_job_order", ["repair_order_id"], unique=False)

    op.create_table(
        "report_order",
        sa.Column("repair_order_id", sa.Uuid(), nullable=False),
        sa.Column("branch", sa.String(length=32), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=True),
        sa.Column("vehicle_id", sa.Uuid(), nullable=True),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("vin", sa.String(length=17), nullable=True),
        sa.Column("advisor", sa.String(length=100), nullable=True),
        sa.Column("opened_at", shared.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", shared.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("promised_at", shared.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("settled_at", shared.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("invoice_number", sa.String(length=40), nullable=True),
        sa.Column("has_fix", sa.Boolean(), nullable=True),
        sa.Column("flat_rate_centihours", sa.BigInteger(), nullable=True),
        sa.Column("labour_cents", sa.BigInteger(), nullable=True),
        sa.Column("parts_cents", sa.BigInteger(), nullable=True),
        sa.Column("fees_cents", sa.BigInteger(), nullable=True),
        sa.Column("net_cents", sa.BigInteger(), nullable=True),
        sa.Column("sold_centihours", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("repair_order_id"),
    )
    with op.batch_alter_table("report_order", schema=None) as batch_op:
        batch_op.create_index(
            "ix_report_order_branch_delivered", ["branch", "delivered_at"], unique=False
        )
        batch_op.create_index(
            "ix_report_order_branch_opened", ["branch", "opened_at"], unique=False
        )
        batch_op.create_index(
            "ix_report_order_branch_settled", ["branch", "settled_at"], unique=False
        )

    op.create_table(
        "report_qc",
        sa.Column("qc_id", sa.Uuid(), nullable=False),
        sa.Column("repair_order_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("branch", sa.String(length=32), nullable=False),
        sa.Column("technician_id", sa.String(length=64), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("inspected_at", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("qc_id"),
    )
    with op.batch_alter_table("report_qc", schema=None) as batch_op:
        batch_op.create_index(
            "ix_report_qc_branch_inspected", ["branch", "inspected_at"], unique=False
        )

    op.create_table(
        "report_schedule",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_branch", sa.String(length=32), nullable=False),
        sa.Column("branch", sa.String(length=32), nullable=True),
        sa.Column("frequency", sa.String(length=8), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "report_survey",
        sa.Column("survey_id", sa.Uuid(), nullable=False),
        sa.Column("visit_id", sa.Uuid(), nullable=False),
        sa.Column("branch", sa.String(length=32), nullable=False),
        sa.Column("repair_order_id", sa.Uuid(), nullable=False),
        sa.Column("overall", sa.Integer(), nullable=False),
        sa.Column("nps", sa.Integer(), nullable=False),
        sa.Column("answered_at", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reliability_expectation", sa.Integer(), nullable=True),
        sa.Column("reliability_perception", sa.Integer(), nullable=True),
        sa.Column("responsiveness_expectation", sa.Integer(), nullable=True),
        sa.Column("responsiveness_perception", sa.Integer(), nullable=True),
        sa.Column("assurance_expectation", sa.Integer(), nullable=True),
        sa.Column("assurance_perception", sa.Integer(), nullable=True),
        sa.Column("empathy_expectation", sa.Integer(), nullable=True),
        sa.Column("empathy_perception", sa.Integer(), nullable=True),
        sa.Column("tangibles_expectation", sa.Integer(), nullable=True),
        sa.Column("tangibles_perception", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("survey_id"),
    )
    with op.batch_alter_table("report_survey", schema=None) as batch_op:
        batch_op.create_index(
            "ix_report_survey_branch_answered", ["branch", "answered_at"], unique=False
        )
        batch_op.create_index("ix_report_survey_order", ["repair_order_id"], unique=False)

    op.create_table(
        "report_visit",
        sa.Column("visit_id", sa.Uuid(), nullable=False),
        sa.Column("branch", sa.String(length=32), nullable=False),
        sa.Column("repair_order_id", sa.Uuid(), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("reached", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("closed_at", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("visit_id"),
    )
    with op.batch_alter_table("report_visit", schema=None) as batch_op:
        batch_op.create_index(
            "ix_report_visit_branch_closed", ["branch", "closed_at"], unique=False
        )
        batch_op.create_index("ix_report_visit_order", ["repair_order_id"], unique=False)

    op.create_table(
        "report_run",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("schedule_id", sa.Uuid(), nullable=False),
        sa.Column("owner_branch", sa.String(length=32), nullable=False),
        sa.Column("branch", sa.String(length=32), nullable=True),
        sa.Column("frequency", sa.String(length=8), nullable=False),
        sa.Column("from_on", sa.Date(), nullable=False),
        sa.Column("to_on", sa.Date(), nullable=False),
        sa.Column("due_at", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("claimed_at", shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("generated_at", shared.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("made_up", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["report_schedule.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("schedule_id", "from_on", name="uq_report_run_schedule_period"),
    )
    with op.batch_alter_table("report_run", schema=None) as batch_op:
        batch_op.create_index("ix_report_run_owner_due", ["owner_branch", "due_at"], unique=False)

    op.create_table(
        "report_run_file",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["report_run.id"],
        ),
        sa.PrimaryKeyConstraint("run_id", "format"),
    )


def downgrade() -> None:
    op.drop_table("report_run_file")
    with op.batch_alter_table("report_run", schema=None) as batch_op:
        batch_op.drop_index("ix_report_run_owner_due")

    op.drop_table("report_run")
    with op.batch_alter_table("report_visit", schema=None) as batch_op:
        batch_op.drop_index("ix_report_visit_order")
        batch_op.drop_index("ix_report_visit_branch_closed")

    op.drop_table("report_visit")
    with op.batch_alter_table("report_survey", schema=None) as batch_op:
        batch_op.drop_index("ix_report_survey_order")
        batch_op.drop_index("ix_report_survey_branch_answered")

    op.drop_table("report_survey")
    op.drop_table("report_schedule")
    with op.batch_alter_table("report_qc", schema=None) as batch_op:
        batch_op.drop_index("ix_report_qc_branch_inspected")

    op.drop_table("report_qc")
    with op.batch_alter_table("report_order", schema=None) as batch_op:
        batch_op.drop_index("ix_report_order_branch_settled")
        batch_op.drop_index("ix_report_order_branch_opened")
        batch_op.drop_index("ix_report_order_branch_delivered")

    op.drop_table("report_order")
    with op.batch_alter_table("report_job", schema=None) as batch_op:
        batch_op.drop_index("ix_report_job_order")
        batch_op.drop_index("ix_report_job_branch_delivered")

    op.drop_table("report_job")
    with op.batch_alter_table("report_invoice_total", schema=None) as batch_op:
        batch_op.drop_index("ix_report_invoice_total_branch_settled")

    op.drop_table("report_invoice_total")
    with op.batch_alter_table("report_complaint", schema=None) as batch_op:
        batch_op.drop_index("ix_report_complaint_branch_opened")

    op.drop_table("report_complaint")
    with op.batch_alter_table("report_comeback", schema=None) as batch_op:
        batch_op.drop_index("ix_report_comeback_order")
        batch_op.drop_index("ix_report_comeback_branch_delivered")

    op.drop_table("report_comeback")
    with op.batch_alter_table("report_clock", schema=None) as batch_op:
        batch_op.drop_index("ix_report_clock_job")
        batch_op.drop_index("ix_report_clock_branch_ended")

    op.drop_table("report_clock")
    with op.batch_alter_table("report_appointment", schema=None) as batch_op:
        batch_op.drop_index("ix_report_appointment_branch_scheduled")

    op.drop_table("report_appointment")
