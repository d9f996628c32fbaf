"""A coroutine run in the background from start to stop (timer loops, checkpoints, publishers)."""

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

log = structlog.get_logger("lexcare.background")


class Background:
    """Runs `run()` as one task; `stop` ends it and waits until it has ended."""

    def __init__(self, run: Callable[[], Coroutine[Any, Any, None]], *, name: str) -> None:
        self.run = run
        self.name = name
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the task (once)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=self.name)
            self._task.add_done_callback(self._report_death)

    async def stop(self, *, cancel: bool = True) -> None:
        """Cancel the task (or, `cancel=False`, let it return) and wait until it has ended.

        Nothing happens when it was not started. A task that writes should be let return:
        a write cancelled in flight may still be applied by the server, later.
        """
        if self._task is not None:
            if cancel:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _report_death(self, task: asyncio.Task[None]) -> None:
        """Log a task that ended by raising: nothing else would notice until `stop`."""
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("background_task_died", task=self.name, exc_info=error)
