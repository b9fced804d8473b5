"""Alembic environment of records."""

from services.records import (
    report_models,  # noqa: F401  (the report tables on Base)
    webhook_models,  # noqa: F401  (the ERP webhook tables on Base)
)
from services.records.models import Base
from shared.migrations import run_env

run_env(Base.metadata)
