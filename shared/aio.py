"""Small asyncio helpers."""

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)


async def settle(task: asyncio.Task[None], seconds: float = 5.0) -> None:
    """Wait for a cancelled task, but never forever.

    On Python 3.11 `asyncio.wait_for` (used inside libraries) can swallow a cancellation;
    loops therefore also check a stop flag, and this bound keeps shutdown finite."""
    with contextlib.suppress(asyncio.CancelledError, Exception):
        async with asyncio.timeout(seconds):
            await task
    if not task.done():
        log.warning("task %s did not stop within %.0fs", task.get_name(), seconds)
