"""What the engine's parts tell each other without holding on to each other."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


class Signals:
    """Work is ready; an execution finished; an execution was closed (cancel its steps here)."""

    def __init__(self) -> None:
        self.work = asyncio.Event()
        self._finished = asyncio.Condition()
        self._closed: list[Callable[[str], None]] = []
        self._done: list[Callable[[str, str], None]] = []

    def wake(self) -> None:
        self.work.set()

    async def finished(self, execution_id: str | None = None, status: str | None = None) -> None:
        """An execution ended (``status``: succeeded, failed, cancelled)."""
        if execution_id is not None and status is not None:
            for listener in self._done:
                listener(execution_id, status)
        async with self._finished:
            self._finished.notify_all()

    def on_finished(self, listener: Callable[[str, str], None]) -> None:
        self._done.append(listener)

    async def wait_finished(self, timeout: float = 0.5) -> None:
        """Wait until some execution finishes (for waiters polling the store)."""
        async with self._finished:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finished.wait(), timeout)

    def on_closed(self, listener: Callable[[str], None]) -> None:
        self._closed.append(listener)

    def closed(self, execution_id: str) -> None:
        for listener in self._closed:
            listener(execution_id)
