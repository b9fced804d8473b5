"""Alembic environment of records."""

from services.records.models import Base
from shared.migrations import run_env

run_env(Base.metadata)
