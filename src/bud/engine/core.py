"""The engine: ingest, match, start, run, emit (DESIGN section 2).

``Engine`` holds what the parts share (store, registry, settings, matcher, metrics, the
definition cache) and the operator's verbs (cancel, retry, replay). ``Ingestor``
(bud.engine.ingest) turns events into decisions and executions in one transaction; ``Worker``
(bud.engine.worker) claims ready steps with a lease and runs them, at least once, with
``execution_id:step_id`` as the actions' idempotency key.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import socket
from collections.abc import Mapping, Sequence
from typing import Any

from bud.actions.registry import ActionRegistry
from bud.engine import scheduler
from bud.engine.flow import FireCounter, FlowGate
from bud.engine.ingest import Ingestor
from bud.engine.matcher import Matcher
from bud.engine.metrics import Metrics
from bud.engine.records import derived_event_id, envelope_from_row, execution_row
from bud.engine.status import ExecutionStatus, StepStatus
from bud.engine.worker import Worker
from bud.errors import ConflictError, NotFoundError, ValidationError
from bud.events import BUILTIN_EVENT_TYPES, EventType, normalize_event
from bud.ids import new_id
from bud.pipelines import PipelineDef, parse_definition
from bud.settings import Settings
from bud.store import Store, Tx
from bud.store import schema as t
from bud.timeutil import now as _now

__all__ = ["Engine", "derived_event_id", "envelope_from_row"]


class Engine:
    def __init__(
        self,
        store: Store,
        registry: ActionRegistry,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        run_workers: bool = True,
    ) -> None:
        self.store = store
        self.registry = registry
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.matcher = Matcher()
        self.fire_counter = FireCounter()
        self.gate = FlowGate(settings, self.fire_counter)
        self.event_types: dict[str, EventType] = dict(BUILTIN_EVENT_TYPES)
        self.platform: Any = None
        self.run_workers = run_workers
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{new_id('w')[-8:]}"
        self._definitions: dict[tuple[str, int], PipelineDef] = {}
        self.wake_event = asyncio.Event()
        self.stopping = False
        self.stopped = asyncio.Event()
        self._finished = asyncio.Condition()
        self.filtered_counts: collections.Counter[str] = collections.Counter()  # since start
        self.ingestor = Ingestor(self)
        self.worker = Worker(self)

    async def start(self, *, exclusive: bool = False) -> None:
        async with self.store.read() as tx:
            self.matcher.load(await tx.list(t.triggers, order="id", descending=False))
            for row in await tx.list(t.event_types, order="name", descending=False):
                self.event_types[row["name"]] = EventType(
                    row["name"], row["description"], row["schema"], False, row["example"]
                )
            if exclusive:
                # Only this process uses the store: leases of earlier processes are void.
                await tx.update(
                    t.steps, {"lease_expires_at": 0.0}, t.steps.c.status == StepStatus.RUNNING
                )
        self.metrics.triggers.set(len(self.matcher))
        if self.run_workers:
            self.worker.start()

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming, give running steps ``grace`` seconds, then cancel what is left."""
        self.stopping = True
        self.stopped.set()
        self.wake_event.set()
        await self.worker.stop(grace)
        await self.ingestor.drain()

    def wake(self) -> None:
        self.wake_event.set()

    async def definition(self, tx: Tx, pipeline_id: str, version: int) -> PipelineDef:
        key = (pipeline_id, version)
        found = self._definitions.get(key)
        if found is None:
            row = await tx.get(t.pipeline_versions, pipeline_id=pipeline_id, version=version)
            if row is None:
                raise NotFoundError(f"pipeline {pipeline_id} version {version} not found")
            found = parse_definition(row["definition"], self.registry)
            self._definitions[key] = found
        return found

    def normalize(
        self, raws: Sequence[Any], *, default_source: str = "api"
    ) -> list[dict[str, Any]]:
        if len(raws) > self.settings.max_batch_events:
            raise ValidationError(
                f"batch has {len(raws)} events; the limit is {self.settings.max_batch_events}",
                details={"path": "events"},
            )
        single = len(raws) == 1
        return [
            normalize_event(
                raw,
                self.event_types,
                where="event" if single else f"events[{i}]",
                max_bytes=self.settings.max_event_bytes,
                default_source=default_source,
            )
            for i, raw in enumerate(raws)
        ]

    async def ingest(
        self, raws: Sequence[Any], *, default_source: str = "api", tx: Tx | None = None
    ) -> list[dict[str, Any]]:
        """Accept events: validate all, then store, match and start executions atomically.

        Returns the envelopes, each with ``duplicate`` set when its event_id was seen before.
        """
        envelopes = self.normalize(raws, default_source=default_source)
        await self.ingestor.accept(envelopes, tx)
        return envelopes

    async def ingest_in(self, tx: Tx, envelopes: list[dict[str, Any]]) -> None:
        await self.ingestor.ingest_in(tx, envelopes)

    async def replay(
        self, event_ids: list[str], *, trigger_id: str | None = None, bypass_dedup: bool = False
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self.ingestor.replay(
            event_ids, trigger_id=trigger_id, bypass_dedup=bypass_dedup
        )
        return result

    def invalidate_config(self) -> None:
        self.worker.invalidate_config()

    def cancel_local(self, execution_id: str) -> None:
        self.worker.cancel_local(execution_id)

    async def create_execution(
        self,
        tx: Tx,
        pipeline: Mapping[str, Any],
        *,
        origin: str,
        trigger_id: str | None,
        event: dict[str, Any] | None,
        params: Mapping[str, Any],
        now: float | None = None,
        parent_key: str | None = None,
        delivery: int = 0,
    ) -> str | None:
        """Create an execution and its steps; None when its ``parent_key`` already has one."""
        now = now or _now()
        definition = await self.definition(tx, pipeline["id"], pipeline["version"])
        row = execution_row(
            pipeline,
            definition,
            origin=origin,
            trigger_id=trigger_id,
            event=event,
            params=params,
            now=now,
            parent_key=parent_key,
        )
        row["delivery"] = delivery
        if parent_key is not None:
            if not await tx.insert_missing(t.executions, [row], "id"):
                return None
        else:
            await tx.insert(t.executions, row)
        await tx.insert(t.steps, scheduler.initial_steps(row["id"], definition, now))
        return str(row["id"])

    async def cancel(self, execution_id: str) -> None:
        async with self.store.transaction() as tx:
            row = await tx.lock(t.executions, id=execution_id)
            if row is None:
                raise NotFoundError(f"execution {execution_id} not found")
            if row["status"] in ("succeeded", "failed", "cancelled"):
                raise ConflictError(f"execution {execution_id} is already {row['status']}")
            await scheduler.close_execution(
                tx, execution_id, ExecutionStatus.CANCELLED, "cancelled by request", _now()
            )
        self.metrics.executions.labels("cancelled").inc()
        self.cancel_local(execution_id)

    async def retry(self, execution_id: str, *, from_step: str | None = None) -> None:
        now = _now()
        async with self.store.transaction() as tx:
            row = await tx.lock(t.executions, id=execution_id)
            if row is None:
                raise NotFoundError(f"execution {execution_id} not found")
            # helper:ui: with from_step a succeeded execution can be re-run from that step.
            retryable = (
                ("failed", "cancelled", "succeeded") if from_step else ("failed", "cancelled")
            )
            if row["status"] not in retryable:
                raise ConflictError(
                    f"execution {execution_id} is {row['status']}; only failed or cancelled "
                    "executions can be retried"
                )
            definition = await self.definition(tx, row["pipeline_id"], row["pipeline_version"])
            if from_step is not None:  # helper:ui
                await _reset_from_step(tx, execution_id, definition, from_step)
            await tx.update(
                t.steps,
                {
                    "status": StepStatus.PENDING,
                    "error": None,
                    "ready_at": None,
                    "finished_at": None,
                    "lease_owner": None,
                    "lease_expires_at": None,
                },
                t.steps.c.execution_id == execution_id,
                t.steps.c.status.in_((StepStatus.FAILED, StepStatus.CANCELLED)),
            )
            await tx.update(
                t.executions,
                {
                    "status": ExecutionStatus.QUEUED,
                    "error": None,
                    "finished_at": None,
                    "deadline_at": None,
                },
                t.executions.c.id == execution_id,
            )
            await scheduler.advance(tx, execution_id, definition, now)
        self.wake()

    async def wait_finished(self, timeout: float = 0.5) -> None:
        """Wait until some execution finishes (for waiters polling the store)."""
        async with self._finished:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finished.wait(), timeout)

    async def notify_finished(self) -> None:
        async with self._finished:
            self._finished.notify_all()


async def _reset_from_step(
    tx: Tx, execution_id: str, definition: PipelineDef, from_step: str
) -> None:
    """helper:ui: make ``from_step`` and every step downstream of it pending again."""
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
    await tx.update(
        t.steps,
        {
            "status": StepStatus.PENDING,
            "error": None,
            "outputs": None,
            "started_at": None,
            "ready_at": None,
            "finished_at": None,
            "lease_owner": None,
            "lease_expires_at": None,
        },
        t.steps.c.execution_id == execution_id,
        t.steps.c.step_id.in_(sorted(chosen)),
    )
