"""Timers: pipeline timeouts, debounced fires, schedule ticks, lifecycle events, expired
flow state.

Each sweep is a transaction that takes what is due, so with several processes sweeping one
store a timer fires once: a closed execution is not closed again, and a debounced event is
fired by whoever removes its pending row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bud.clock import Clock
from bud.engine import scheduler
from bud.engine.ingest import Ingestor
from bud.engine.lifecycle import Emitter
from bud.engine.metrics import Metrics
from bud.engine.schedules import Ticker
from bud.engine.signals import Signals
from bud.settings import Settings
from bud.store import Repository
from bud.store.records import ExecutionStatus

log = logging.getLogger("bud.engine")

PRUNE_EVERY = 60.0


class Sweeper:
    def __init__(
        self,
        repo: Repository,
        ingestor: Ingestor,
        settings: Settings,
        metrics: Metrics,
        clock: Clock,
        signals: Signals,
    ) -> None:
        self.repo = repo
        self.ingestor = ingestor
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.signals = signals
        self._pruned = 0.0
        self.ticker = Ticker(repo, ingestor.catalogue, ingestor, clock)
        self.emitter = Emitter(repo, ingestor)

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self.sweep()
            except Exception:
                log.exception("sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), min(1.0, self.settings.poll_seconds))

    async def sweep(self) -> None:
        await self.time_out()
        await self.ingestor.fire_debounced()
        for part in (self.ticker.fire_due, self.emitter.emit):
            try:  # schedules and lifecycle events go on whatever the other part does
                await part()
            except Exception:
                log.exception("sweep: %s failed", part.__qualname__)
        now = self.clock.now()
        if now - self._pruned >= PRUNE_EVERY:
            self._pruned = now
            async with self.repo.transaction() as session:
                await session.prune(now)

    async def time_out(self) -> None:
        """Fail every running execution past its pipeline deadline."""
        now = self.clock.now()
        closed = []
        async with self.repo.transaction() as session:
            for row in await session.overdue_executions(now):
                await session.hold_execution(row["id"])
                deadline = row["deadline_at"] or now
                started = row["started_at"] or deadline
                if await scheduler.close_execution(
                    session,
                    row["id"],
                    ExecutionStatus.FAILED,
                    f"pipeline timed out after {deadline - started:g}s",
                    now,
                ):
                    closed.append(row["id"])
        for execution_id in closed:
            self.metrics.executions.labels("failed").inc()
            self.signals.closed(execution_id)
            await self.signals.finished(execution_id, "failed")
