"""The engine: ingest, match, start, run, emit (docs/architecture.md).

``Engine`` builds the parts in data-flow order, each with only the collaborators it uses,
and runs their loops: the ``Catalogue`` (the process's cached copy of triggers, event types
and config), the ``Ingestor`` (group commit, decisions, replay, debounced fires), the
``Launcher`` (the one fire path, with the ``FlowGate``), the ``Worker`` (claims, steps,
completion) and the ``Sweeper`` (timers). The operator's verbs (cancel, retry) live here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from bud.actions.registry import ActionRegistry
from bud.clock import Clock, SystemClock
from bud.engine import fanout, scheduler
from bud.engine.catalogue import Catalogue
from bud.engine.firing import Launcher
from bud.engine.flow import FlowGate
from bud.engine.ingest import Ingestor
from bud.engine.metrics import Metrics
from bud.engine.signals import Signals
from bud.engine.sweeper import Sweeper
from bud.engine.worker import Worker
from bud.errors import ConflictError, NotFoundError, ValidationError
from bud.ids import new_id
from bud.pipelines import PipelineDef
from bud.settings import Settings
from bud.store import Repository
from bud.store.records import ExecutionStatus
from bud.store.repository import READY_STEPS, WORK_CHANNEL

__all__ = ["Engine"]

log = logging.getLogger("bud.engine")


class Engine:
    def __init__(
        self,
        repo: Repository,
        registry: ActionRegistry,
        settings: Settings,
        *,
        platform: Callable[[Ingestor], Any] | None = None,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
        run_workers: bool = True,
        kind: str = "serve",
    ) -> None:
        self.repo = repo
        self.kind = kind
        self.settings = settings
        self.clock = clock or SystemClock()
        self.metrics = metrics or Metrics()
        self.run_workers = run_workers
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{new_id('w')[-8:]}"
        self.signals = Signals()
        self.catalogue = Catalogue(repo, registry, settings)
        gate = FlowGate(settings, scheduler.close_execution)
        self.launcher = Launcher(settings, self.catalogue, gate, self.metrics)
        self.ingestor = Ingestor(
            repo, self.catalogue, self.launcher, self.metrics, settings, self.clock, self.signals
        )
        self.platform = platform(self.ingestor) if platform is not None else None
        self.worker = Worker(
            repo,
            self.catalogue,
            self.ingestor,
            self.platform,
            settings,
            self.metrics,
            self.clock,
            self.signals,
            self.worker_id,
        )
        self.sweeper = Sweeper(
            repo, self.ingestor, settings, self.metrics, self.clock, self.signals
        )
        self._stopping = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._listeners: list[asyncio.Task[None]] = []  # nothing to drain: cancelled at stop
        self.started_at = self.clock.now()

    async def start(self) -> None:
        if self.repo.exclusive:
            # Only this process uses the store: leases of earlier processes are void.
            async with self.repo.transaction() as session:
                await session.void_leases()
        await self.catalogue.load()
        self.metrics.triggers.set(len(self.catalogue.matcher))
        self._loops.append(
            asyncio.create_task(self.catalogue.watch(self._stopping), name="bud-catalogue")
        )
        await self.beat()
        self._loops.append(asyncio.create_task(self._heartbeats(), name="bud-heartbeat"))
        if self.run_workers:
            self.worker.start()
            self._loops.append(
                asyncio.create_task(self.sweeper.run(self._stopping), name="bud-sweeper")
            )
            self._listeners.append(asyncio.create_task(self._listen_for_work(), name="bud-wakeups"))

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming, give running steps ``grace`` seconds, then give back what is left."""
        self._stopping.set()
        for task in self._listeners:
            task.cancel()
        await asyncio.gather(*self._listeners, return_exceptions=True)
        self._listeners.clear()
        await self.worker.stop(grace)
        await self.ingestor.drain()
        if self._loops:
            await asyncio.wait(self._loops, timeout=2.0)
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops.clear()
        with contextlib.suppress(Exception):
            async with self.repo.transaction() as session:
                await session.forget_process(self.worker_id)

    async def beat(self) -> None:
        """Tell the store this process is alive, and what it is doing."""
        now = self.clock.now()
        async with self.repo.transaction() as session:
            await session.beat(
                {
                    "id": self.worker_id,
                    "kind": self.kind,
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "started_at": self.started_at,
                    "last_seen": now,
                    "info": {
                        "runs_steps": self.run_workers,
                        "slots": self.worker.slots if self.run_workers else 0,
                        "running": self.worker.running,
                    },
                }
            )

    async def processes(self) -> list[dict[str, Any]]:
        """The processes sharing the store: alive, or lost within the last hour."""
        now = self.clock.now()
        async with self.repo.read() as session:
            rows = await session.processes(now - 3600)
        lost_after = 3 * self.settings.heartbeat_seconds
        return [
            {**row, "state": "alive" if now - row["last_seen"] <= lost_after else "lost"}
            for row in rows
        ]

    async def _heartbeats(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.heartbeat_seconds)
            if self._stopping.is_set():
                return
            try:
                await self.beat()
            except Exception:
                log.exception("heartbeat failed")

    async def _listen_for_work(self) -> None:
        """Other processes' commits that made steps ready wake this worker (LISTEN/NOTIFY)."""
        async for said in self.repo.wakeups(WORK_CHANNEL):
            if said == READY_STEPS:
                self.worker.steps_ready()
            else:
                self.signals.wake()

    async def changed(self) -> None:
        """A write through this process changed the catalogue: read it back before answering."""
        await self.catalogue.refresh()
        self.metrics.triggers.set(len(self.catalogue.matcher))

    async def cancel(self, execution_id: str) -> None:
        async with self.repo.transaction() as session:
            row = await session.lock_execution(execution_id)
            if row is None:
                raise NotFoundError(f"execution {execution_id} not found")
            if row["status"] in ("succeeded", "failed", "cancelled"):
                raise ConflictError(f"execution {execution_id} is already {row['status']}")
            await scheduler.close_execution(
                session,
                execution_id,
                ExecutionStatus.CANCELLED,
                "cancelled by request",
                self.clock.now(),
            )
        self.metrics.executions.labels("cancelled").inc()
        self.signals.closed(execution_id)
        await self.signals.finished(execution_id, "cancelled")

    async def retry(self, execution_id: str, *, from_step: str | None = None) -> None:
        """Resume a failed or cancelled execution where it stopped; with ``from_step``, run
        that step and every step downstream of it again (a succeeded execution too)."""
        now = self.clock.now()
        async with self.repo.transaction() as session:
            row = await session.lock_execution(execution_id)
            if row is None:
                raise NotFoundError(f"execution {execution_id} not found")
            retryable = (
                ("failed", "cancelled", "succeeded") if from_step else ("failed", "cancelled")
            )
            if row["status"] not in retryable:
                raise ConflictError(
                    f"execution {execution_id} is {row['status']}; only failed or cancelled "
                    "executions can be retried"
                )
            definition = await self.catalogue.definition(
                row["pipeline_id"], row["pipeline_version"], session
            )
            if from_step is not None:
                again = _downstream(definition, from_step)
                # A for_each step runs its items again too (they are steps of their own).
                again += [
                    s["step_id"]
                    for s in await session.steps_of(execution_id)
                    if fanout.is_item(s["step_id"]) and fanout.split(s["step_id"])[0] in again
                ]
                await session.reset_steps(execution_id, again)
            await session.reset_for_retry(execution_id)
            await scheduler.advance(session, execution_id, definition, now)
            session.wake_workers()
        self.signals.wake()


def _downstream(definition: PipelineDef, from_step: str) -> list[str]:
    """``from_step`` and every step that depends on it, directly or not."""
    if from_step not in {s.id for s in definition.steps}:
        raise ValidationError(
            f"from_step: {from_step!r} is not a step of this execution",
            details={"path": "from_step", "known": [s.id for s in definition.steps]},
        )
    chosen: set[str] = set()
    todo = [from_step]
    while todo:
        step_id = todo.pop()
        if step_id not in chosen:
            chosen.add(step_id)
            todo.extend(definition.dependents(step_id))
    return sorted(chosen)
