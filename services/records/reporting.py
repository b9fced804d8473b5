"""Entry point of records' reporting part: its router, background jobs and start-up steps."""

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from services.records import report_models  # noqa: F401  (the report tables on Base)

if TYPE_CHECKING:
    from shared.service import Runtime

router = APIRouter()
BACKGROUND: list[Callable[["Runtime"], Coroutine[Any, Any, None]]] = []
STARTUP: list[Callable[["Runtime"], Coroutine[Any, Any, None]]] = []
