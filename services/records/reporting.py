"""Entry point of records' reporting part: its router, background jobs and start-up steps.

The report facts are kept by the consumers in `report_handlers` (registered on records'
subscriber list when this module is imported), the KPIs are defined in `report_definitions`
and computed in `report_kpis`, laid out by `report_output`, served by `report_routes`, and
generated on a schedule by `report_schedule`.
"""

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from services.records import report_handlers, report_models, report_routes, report_schedule

if TYPE_CHECKING:
    from shared.service import Runtime

router = report_routes.router
BACKGROUND: list[Callable[["Runtime"], Coroutine[Any, Any, None]]] = [
    report_schedule.scheduled_reports
]
STARTUP: list[Callable[["Runtime"], Coroutine[Any, Any, None]]] = []

__all__ = ["BACKGROUND", "STARTUP", "report_handlers", "report_models", "router"]
