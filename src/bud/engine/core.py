"""The engine: ingest, match, start, run, emit (DESIGN section 2).

Ingest validates every envelope first, then in one transaction stores the new events, records
a decision for each candidate trigger and creates one execution per (trigger, event) with its
first steps ready. Workers claim ready steps through the store with a lease, so a process
killed mid-step loses nothing: the lease runs out and the step is run again (at least once;
actions get ``execution_id:step_id`` as idempotency key).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select

from bud.actions.base import ActionContext, ActionError
from bud.actions.registry import ActionRegistry
from bud.engine import scheduler
from bud.engine.flow import BatchState, FireCounter, FlowGate
from bud.engine.matcher import Matcher
from bud.engine.metrics import Metrics
from bud.engine.status import ExecutionStatus, StepStatus
from bud.errors import ConflictError, NotFoundError, ValidationError
from bud.events import BUILTIN_EVENT_TYPES, EventType, normalize_event
from bud.filters import summarize
from bud.ids import new_id
from bud.pipelines import PipelineDef, parse_definition
from bud.settings import Settings
from bud.store import Store, Tx
from bud.store import schema as t
from bud.templates import TemplateError, build_context, mask_secrets, render_string, render_value
from bud.timeutil import now as _now

log = logging.getLogger("bud.engine")


def envelope_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    keys = (
        "event_type",
        "event_id",
        "timestamp",
        "source",
        "data",
        "correlation_id",
        "causation_id",
        "depth",
        "test",
    )
    return {k: row[k] for k in keys}


def derived_event_id(key: str, event_type: str) -> str:
    """A deterministic id for an event an action emits, so a re-run step emits it once."""
    return "evt_" + hashlib.sha256(f"{key}|{event_type}".encode()).hexdigest()[:26]


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
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running: dict[tuple[str, str], asyncio.Task[Any]] = {}
        self._loops: list[asyncio.Task[Any]] = []
        self._stopping = False
        self._stopped = asyncio.Event()
        self._finished = asyncio.Condition()
        self._pending: list[tuple[list[dict[str, Any]], asyncio.Future[None]]] = []
        self._config_cache: (
            tuple[float, dict[str, str], dict[str, dict[str, Any]], dict[str, Any]] | None
        ) = None
        self._flusher: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------
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
            self._loops = [
                asyncio.create_task(self._work_loop(), name="bud-worker"),
                asyncio.create_task(self._sweep_loop(), name="bud-sweeper"),
            ]

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming, give running steps ``grace`` seconds, then cancel what is left.

        A step cancelled here keeps its lease and runs again after the next start.
        """
        self._stopping = True
        self._stopped.set()
        self._wake.set()
        running = list(self._running.values())
        if running:
            await asyncio.wait(running, timeout=grace)
        for task in [*self._running.values(), *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._running.values(), *self._tasks, return_exceptions=True)
        if self._loops:
            await asyncio.wait(self._loops, timeout=2.0)
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        self._loops.clear()

    def wake(self) -> None:
        self._wake.set()

    # -- definitions ---------------------------------------------------------------------
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

    # -- ingest --------------------------------------------------------------------------
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
        if tx is not None:
            await self.ingest_in(tx, envelopes)
            return envelopes
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((envelopes, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="bud-ingest")
        await done
        return envelopes

    async def _flush(self) -> None:
        """Group commit: every publish that queued while a transaction ran shares the next one."""
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self.store.transaction() as tx:
                    await self.ingest_in(tx, [e for envelopes, _ in batch for e in envelopes])
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)
                self.wake()

    async def ingest_in(self, tx: Tx, envelopes: list[dict[str, Any]]) -> None:
        """Store new events with their decisions and executions, in a few batched statements."""
        now = _now()
        unique: dict[str, dict[str, Any]] = {}
        for env in envelopes:
            unique.setdefault(env["event_id"], env)
        known = (
            set(
                await tx.scalars(
                    select(t.events.c.event_id).where(t.events.c.event_id.in_(list(unique)))
                )
            )
            if unique
            else set()
        )
        fresh = [env for env in unique.values() if env["event_id"] not in known]
        decided = [
            (env, *self.matcher.decide(env, explain_limit=self.settings.max_non_fired_decisions))
            for env in fresh
        ]
        wanted = {
            d.trigger.pipeline_id for _env, ds, _n in decided for d in ds if d.outcome == "fired"
        }
        pipelines = (
            {p["id"]: p for p in await tx.list(t.pipelines, where=[t.pipelines.c.id.in_(wanted)])}
            if wanted
            else {}
        )
        event_rows: list[dict[str, Any]] = []
        decision_rows: list[dict[str, Any]] = []
        execution_rows: list[dict[str, Any]] = []
        step_rows: list[dict[str, Any]] = []
        fired_by_trigger: dict[str, int] = {}
        batch = BatchState.new()
        for env, decisions, unexplained in decided:
            fired = 0
            for d in decisions:
                row = {
                    "event_id": env["event_id"],
                    "trigger_id": d.trigger.id,
                    "pipeline_id": d.trigger.pipeline_id,
                    "outcome": d.outcome,
                    "reason_code": None,
                    "reason": d.reason,
                    "detail": d.detail,
                    "execution_id": None,
                    "created_at": now,
                }
                decision_rows.append(row)
                if d.outcome != "fired":
                    row["reason_code"] = d.outcome
                    continue
                pipeline = pipelines.get(d.trigger.pipeline_id)
                if env["test"]:
                    row.update(
                        outcome="would_fire",
                        reason_code="test",
                        reason="test event: the filter matched, nothing started",
                    )
                elif env["depth"] > self.settings.max_chain_depth:
                    row.update(
                        outcome="suppressed",
                        reason_code="chain_depth",
                        reason=f"event chain depth {env['depth']} exceeds the limit of "
                        f"{self.settings.max_chain_depth} (loop protection)",
                    )
                elif pipeline is None:
                    row.update(
                        outcome="error",
                        reason_code="no_pipeline",
                        reason=f"pipeline {d.trigger.pipeline_id} not found",
                    )
                else:
                    verdict, key, held = await self.gate.check(tx, d.trigger, env, now, batch, row)
                    row.update(
                        outcome=verdict.outcome, reason_code=verdict.code, reason=verdict.reason
                    )
                    if verdict.outcome == "fired":
                        definition = await self.definition(tx, pipeline["id"], pipeline["version"])
                        execution = self._execution_row(
                            pipeline,
                            definition,
                            origin="trigger",
                            trigger_id=d.trigger.id,
                            event=env,
                            params={},
                            now=now,
                        )
                        execution.update(concurrency_key=key, held=held)
                        row["execution_id"] = execution["id"]
                        execution_rows.append(execution)
                        step_rows += scheduler.initial_steps(
                            execution["id"], definition, now, held=held
                        )
                        if key is not None:
                            batch.open_keys[(d.trigger.id, key)] = execution["id"]
                        fired += 1
                        batch.fired[d.trigger.id] = batch.fired.get(d.trigger.id, 0) + 1
                        fired_by_trigger[d.trigger.id] = fired_by_trigger.get(d.trigger.id, 0) + 1
                        self.fire_counter.add(d.trigger.id, now, self._breaker_window(d.trigger))
                        self.metrics.fired.labels(d.trigger.id, env["event_type"]).inc()
            for row in decision_rows[len(decision_rows) - len(decisions) :]:
                self.metrics.decisions.labels(
                    env["event_type"], row["trigger_id"], row["outcome"]
                ).inc()
            event_rows.append(
                {
                    "event_id": env["event_id"],
                    "event_type": env["event_type"],
                    "source": env["source"],
                    "timestamp": env["timestamp"],
                    "received_at": now,
                    "data": env["data"],
                    "correlation_id": env["correlation_id"],
                    "causation_id": env["causation_id"],
                    "depth": env["depth"],
                    "test": env["test"],
                    "fired_count": fired,
                    "candidate_count": len(decisions) + unexplained,
                }
            )
        inserted = await tx.insert_missing(t.events, event_rows, "event_id")
        if len(inserted) < len(event_rows):
            # A concurrent publisher stored some of these ids first: theirs fired, ours must not.
            execution_rows = [r for r in execution_rows if r["event_id"] in inserted]
            kept = {r["id"] for r in execution_rows}
            step_rows = [r for r in step_rows if r["execution_id"] in kept]
            decision_rows = [r for r in decision_rows if r["event_id"] in inserted]
            fired_by_trigger = {}
            for r in execution_rows:
                fired_by_trigger[r["trigger_id"]] = fired_by_trigger.get(r["trigger_id"], 0) + 1
        await tx.insert(t.executions, execution_rows)
        await tx.insert(t.steps, step_rows)
        await tx.insert(t.decisions, decision_rows)
        for trigger_id, count in fired_by_trigger.items():
            await tx.update(
                t.triggers,
                {"fire_count": t.triggers.c.fire_count + count, "last_fired_at": now},
                t.triggers.c.id == trigger_id,
            )
        for execution_id in batch.cancelled:
            self._cancel_local(execution_id)
        if batch.tripped:
            await self._tripped(tx, batch.tripped, now)
        seen: set[str] = set()
        for env in envelopes:
            env["duplicate"] = env["event_id"] not in inserted or env["event_id"] in seen
            seen.add(env["event_id"])
            if env["duplicate"]:
                self.metrics.duplicates.labels(env["event_type"]).inc()
            else:
                self.metrics.events.labels(env["event_type"]).inc()

    def _breaker_window(self, view: Any) -> float:
        rule = (view.flow or {}).get("circuit_breaker")
        return (
            float(rule["window_seconds"]) if rule else float(self.settings.breaker_window_seconds)
        )

    async def _tripped(self, tx: Tx, tripped: list[dict[str, Any]], now: float) -> None:
        """Disable tripped triggers and emit ``trigger.tripped`` for each, in this transaction."""
        envelopes = []
        for item in tripped:
            view = item["trigger"]
            self.matcher.disable(view.id)
            self.fire_counter.forget(view.id)
            envelopes.append(
                {
                    "event_type": "trigger.tripped",
                    "source": "bud",
                    "event_id": derived_event_id(f"{view.id}:{now}", "trigger.tripped"),
                    "data": {
                        "trigger_id": view.id,
                        "trigger_name": view.name,
                        "pipeline_id": view.pipeline_id,
                        "event_type": view.event_type,
                        "reason": item["reason"],
                        "fires": item["fires"],
                        "window_seconds": item["window_seconds"],
                    },
                }
            )
        await self.ingest_in(tx, self.normalize(envelopes, default_source="bud"))

    @staticmethod
    def _execution_row(
        pipeline: Mapping[str, Any],
        definition: PipelineDef,
        *,
        origin: str,
        trigger_id: str | None,
        event: dict[str, Any] | None,
        params: Mapping[str, Any],
        now: float,
        parent_key: str | None = None,
    ) -> dict[str, Any]:
        return {
            "id": new_id("exe"),
            "pipeline_id": pipeline["id"],
            "pipeline_version": pipeline["version"],
            "trigger_id": trigger_id,
            "event_id": event["event_id"] if event else None,
            "origin": origin,
            "status": ExecutionStatus.QUEUED,
            "params": {**definition.parameters, **params},
            "event": event,
            "error": None,
            "created_at": now,
            "started_at": None,
            "finished_at": None,
            "deadline_at": None,
            "max_parallel": definition.max_parallel_steps,
            "parent_key": parent_key,
            "delivery": 0,
            "concurrency_key": None,
            "held": False,
        }

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
        row = self._execution_row(
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

    # -- replay --------------------------------------------------------------------------
    async def replay(
        self, event_ids: list[str], *, trigger_id: str | None = None, bypass_dedup: bool = False
    ) -> dict[str, Any]:
        """Deliver stored events again to their matching triggers (or to one chosen trigger).

        With dedup honoured, a (trigger, event) pair that already has an execution is recorded
        as ``suppressed: already_fired``; with ``bypass_dedup`` it runs again as a new delivery.
        Replays are deliberate operator acts: the other flow rules do not apply to them.
        """
        now = _now()
        results: list[dict[str, Any]] = []
        async with self.store.transaction() as tx:
            for event_id in event_ids:
                row = await tx.get(t.events, event_id=event_id)
                if row is None:
                    raise NotFoundError(
                        f"event {event_id} not found", details={"event_id": event_id}
                    )
                env = envelope_from_row(row)
                views = (
                    [self.matcher.get(trigger_id)]
                    if trigger_id
                    else [
                        self.matcher.get(tid) for tid in self.matcher.candidates(env["event_type"])
                    ]
                )
                for view in views:
                    if view is None:
                        raise NotFoundError(f"event trigger {trigger_id} not found")
                    outcome, code, reason, execution_id = "filtered", "filtered", "", None
                    verdict = view.filter.explain(env)
                    e = t.executions
                    previous = await tx.list(
                        e, where=[e.c.trigger_id == view.id, e.c.event_id == event_id], order="id"
                    )
                    pipeline = await tx.get(t.pipelines, id=view.pipeline_id)
                    if view.event_type != env["event_type"]:
                        code, reason = "wrong_type", f"the trigger listens to {view.event_type}"
                    elif not verdict["matched"]:
                        reason = summarize(verdict)
                    elif not view.enabled:
                        outcome, code, reason = "disabled", "disabled", "trigger is disabled"
                    elif env["test"]:
                        outcome, code = "would_fire", "test"
                        reason = "test event: the filter matched, nothing started"
                    elif previous and not bypass_dedup:
                        outcome, code = "suppressed", "already_fired"
                        reason = (
                            f"already fired for this event (execution {previous[0]['id']}); "
                            "replay with bypass_dedup to run it again"
                        )
                    elif pipeline is None:
                        outcome, code, reason = "error", "no_pipeline", "pipeline not found"
                    else:
                        execution_id = await self.create_execution(
                            tx,
                            pipeline,
                            origin="trigger",
                            trigger_id=view.id,
                            event=env,
                            params={},
                            now=now,
                            delivery=max((p["delivery"] for p in previous), default=-1) + 1,
                        )
                        outcome, code, reason = "fired", "replay", "replayed: filter matched"
                        await tx.update(
                            t.triggers,
                            {"fire_count": t.triggers.c.fire_count + 1, "last_fired_at": now},
                            t.triggers.c.id == view.id,
                        )
                    decision = {
                        "event_id": event_id,
                        "trigger_id": view.id,
                        "pipeline_id": view.pipeline_id,
                        "outcome": outcome,
                        "reason_code": code,
                        "reason": f"replay: {reason}",
                        "detail": None,
                        "execution_id": execution_id,
                        "created_at": now,
                    }
                    self.metrics.decisions.labels(env["event_type"], view.id, outcome).inc()
                    if execution_id is not None:
                        self.metrics.fired.labels(view.id, env["event_type"]).inc()
                    await tx.insert(t.decisions, decision)
                    results.append(decision)
        self.wake()
        fired = [d for d in results if d["outcome"] == "fired"]
        return {
            "events": len(event_ids),
            "fired": len(fired),
            "executions": [d["execution_id"] for d in fired],
            "decisions": results,
        }

    # -- operator actions ----------------------------------------------------------------
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
        self._cancel_local(execution_id)

    async def retry(self, execution_id: str) -> None:
        now = _now()
        async with self.store.transaction() as tx:
            row = await tx.lock(t.executions, id=execution_id)
            if row is None:
                raise NotFoundError(f"execution {execution_id} not found")
            if row["status"] not in ("failed", "cancelled"):
                raise ConflictError(
                    f"execution {execution_id} is {row['status']}; only failed or cancelled "
                    "executions can be retried"
                )
            definition = await self.definition(tx, row["pipeline_id"], row["pipeline_version"])
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

    def _cancel_local(self, execution_id: str) -> None:
        for (exe, _step), task in list(self._running.items()):
            if exe == execution_id:
                task.cancel()

    async def wait_finished(self, timeout: float = 0.5) -> None:
        """Wait until some execution finishes (for waiters polling the store)."""
        async with self._finished:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finished.wait(), timeout)

    async def _notify_finished(self) -> None:
        async with self._finished:
            self._finished.notify_all()

    # -- workers -------------------------------------------------------------------------
    async def _work_loop(self) -> None:
        slots = max(1, self.settings.workers)
        while not self._stopping:
            self._wake.clear()
            free = slots - len(self._running)
            claimed: list[dict[str, Any]] = []
            if free > 0:
                try:
                    async with self.store.transaction() as tx:
                        claimed = await tx.claim_steps(
                            self.worker_id, _now(), self.settings.lease_seconds, free
                        )
                except Exception:
                    log.exception("claiming steps failed")
                    await asyncio.sleep(self.settings.poll_seconds)
            for row in claimed:
                self._spawn(row)
            if claimed and len(claimed) == free:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_seconds)

    def _spawn(self, row: dict[str, Any]) -> None:
        key = (row["execution_id"], row["step_id"])
        task = asyncio.create_task(self._run_claimed(row), name=f"step {key}")
        self._running[key] = task
        self.metrics.running.inc()
        task.add_done_callback(functools.partial(self._step_done, key))

    def _step_done(self, key: tuple[str, str], _task: object = None) -> None:
        self._running.pop(key, None)
        self.metrics.running.dec()
        self._wake.set()

    async def _run_claimed(self, row: dict[str, Any]) -> None:
        try:
            await self._run_step(row)
        except asyncio.CancelledError:
            if self._stopping:
                raise
        except Exception:
            log.exception("step %s/%s crashed the worker", row["execution_id"], row["step_id"])

    async def _sweep_loop(self) -> None:
        while not self._stopping:
            try:
                await self._sweep_timeouts()
                await self._fire_debounced()
            except Exception:
                log.exception("sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), min(1.0, self.settings.poll_seconds))

    async def _sweep_timeouts(self) -> None:
        now = _now()
        async with self.store.transaction() as tx:
            late = await tx.list(
                t.executions,
                where=[
                    t.executions.c.status == ExecutionStatus.RUNNING,
                    t.executions.c.deadline_at.is_not(None),
                    t.executions.c.deadline_at < now,
                ],
            )
            for row in late:
                await tx.lock(t.executions, id=row["id"])
                definition = await self.definition(tx, row["pipeline_id"], row["pipeline_version"])
                await scheduler.close_execution(
                    tx,
                    row["id"],
                    ExecutionStatus.FAILED,
                    f"pipeline timed out after {definition.timeout_seconds:g}s",
                    now,
                )
        for row in late:
            self.metrics.executions.labels("failed").inc()
            self._cancel_local(row["id"])
        if late:
            await self._notify_finished()

    async def _fire_debounced(self) -> None:
        """Fire each debounced event whose quiet period has passed (the last event wins)."""
        now = _now()
        st = t.trigger_state
        async with self.store.transaction() as tx:
            due = await tx.list(
                st,
                where=[st.c.kind == "debounce", st.c.expires_at <= now],
                order="expires_at",
                descending=False,
                limit=100,
            )
            for state in due:
                await tx.delete(
                    st,
                    st.c.trigger_id == state["trigger_id"],
                    st.c.kind == "debounce",
                    st.c.key == state["key"],
                )
                event_id = (state["value"] or {}).get("event_id")
                event = await tx.get(t.events, event_id=event_id)
                view = self.matcher.get(state["trigger_id"])
                d = t.decisions
                where = (
                    d.c.event_id == event_id,
                    d.c.trigger_id == state["trigger_id"],
                    d.c.outcome == "debounced",
                )
                if event is None or view is None or not view.enabled:
                    await tx.update(
                        d,
                        {
                            "outcome": "suppressed",
                            "reason_code": "trigger_gone",
                            "reason": "the trigger was disabled or deleted before the "
                            "debounce period ended",
                        },
                        *where,
                    )
                    continue
                pipeline = await tx.get(t.pipelines, id=view.pipeline_id)
                if pipeline is None:
                    continue
                execution_id = await self.create_execution(
                    tx,
                    pipeline,
                    origin="trigger",
                    trigger_id=view.id,
                    event=envelope_from_row(event),
                    params={},
                    now=now,
                )
                await tx.update(
                    d,
                    {
                        "outcome": "fired",
                        "reason_code": None,
                        "execution_id": execution_id,
                        "reason": "fired after the debounce period (last event wins)",
                    },
                    *where,
                )
                await tx.update(
                    t.events,
                    {"fired_count": t.events.c.fired_count + 1},
                    t.events.c.event_id == event_id,
                )
                await tx.update(
                    t.triggers,
                    {"fire_count": t.triggers.c.fire_count + 1, "last_fired_at": now},
                    t.triggers.c.id == view.id,
                )
        if due:
            self.wake()

    # -- running one step ----------------------------------------------------------------
    CONFIG_TTL = 2.0

    def invalidate_config(self) -> None:
        self._config_cache = None

    async def _config(
        self, tx: Tx
    ) -> tuple[dict[str, str], dict[str, dict[str, Any]], dict[str, Any]]:
        """Secrets, channels and pipeline names, re-read at most every CONFIG_TTL seconds."""
        cached = self._config_cache
        if cached is not None and cached[0] > _now():
            return cached[1], cached[2], cached[3]
        secrets = dict(self.settings.secrets)
        secrets.update({r["name"]: r["value"] for r in await tx.list(t.secrets, order="name")})
        channels = self.settings.channel_config()
        channels.update({r["name"]: r["config"] for r in await tx.list(t.channels, order="name")})
        names: dict[str, Any] = {}
        self._config_cache = (_now() + self.CONFIG_TTL, secrets, channels, names)
        return secrets, channels, names

    async def _run_step(self, row: dict[str, Any]) -> None:
        execution_id, step_id, attempt = row["execution_id"], row["step_id"], row["attempts"]
        now = _now()
        async with self.store.transaction() as tx:
            execution = await tx.get(t.executions, id=execution_id)
            if execution is None:
                return
            definition = await self.definition(
                tx, execution["pipeline_id"], execution["pipeline_version"]
            )
            if execution["status"] == ExecutionStatus.QUEUED:
                deadline = now + definition.timeout_seconds if definition.timeout_seconds else None
                await tx.update(
                    t.executions,
                    {"status": ExecutionStatus.RUNNING, "started_at": now, "deadline_at": deadline},
                    t.executions.c.id == execution_id,
                    t.executions.c.status == ExecutionStatus.QUEUED,
                )
            step_rows = await tx.list(
                t.steps,
                where=[t.steps.c.execution_id == execution_id],
                order="position",
                descending=False,
            )
            secrets, channels, names = await self._config(tx)
            if execution["pipeline_id"] not in names:
                pipeline = await tx.get(t.pipelines, id=execution["pipeline_id"])
                names[execution["pipeline_id"]] = pipeline["name"] if pipeline else None
        step = definition.step(step_id)
        action = self.registry.get(step.action)
        context = build_context(
            event=execution["event"],
            steps={
                r["step_id"]: {
                    "status": r["status"],
                    "outputs": r["outputs"] or {},
                    "error": r["error"],
                }
                for r in step_rows
            },
            pipeline={
                "id": execution["pipeline_id"],
                "version": execution["pipeline_version"],
                "name": names.get(execution["pipeline_id"]),
            },
            execution={
                "id": execution_id,
                "trigger_id": execution["trigger_id"],
                "event_id": execution["event_id"],
                "origin": execution["origin"],
            },
            trigger={"id": execution["trigger_id"]} if execution["trigger_id"] else {},
            params=execution["params"],
            secrets=secrets,
        )
        secret_values = list(secrets.values())
        ctx = ActionContext(
            execution_id=execution_id,
            step_id=step_id,
            attempt=attempt,
            params={},
            event=execution["event"],
            settings=self.settings,
            platform=self.platform,
            deliveries=self._delivery_recorder(execution_id, step_id, attempt, secret_values),
            emit=self._emitter(execution),
            run_pipeline=self._child_runner(execution),
            channels=channels,
        )
        started = _now()
        outputs: dict[str, Any] = {}
        params: dict[str, Any] | None = None
        error: str | None = None
        retryable = False
        status = StepStatus.SUCCEEDED
        try:
            if step.condition is not None:
                value = render_string(step.condition, context, where=f"steps.{step_id}.condition")
                if not value or (
                    isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "")
                ):
                    status = StepStatus.SKIPPED
                    ctx.log(f"skipped: condition {step.condition!r} is false")
            if status != StepStatus.SKIPPED:
                params = render_value(step.params, context, where=f"steps.{step_id}.params")
                ctx.params = params
                action.check_params(params, where=f"steps.{step_id}.params", rendered=True)
                timeout = step.timeout_seconds or action.timeout_seconds
                heartbeat = asyncio.create_task(self._heartbeat(execution_id, step_id))
                try:
                    outputs = await asyncio.wait_for(action(ctx, params), timeout)
                except TimeoutError:
                    raise ActionError(f"timed out after {timeout:g}s") from None
                finally:
                    heartbeat.cancel()
        except (TemplateError, ValidationError) as exc:
            status, error, retryable = StepStatus.FAILED, exc.message, False
        except ActionError as exc:
            status, error, retryable = StepStatus.FAILED, exc.message, exc.retryable
            outputs = exc.outputs
        except asyncio.CancelledError:
            if self._stopping:
                raise
            return  # cancelled by request or timeout: the store already says so
        except Exception as exc:
            status, error, retryable = StepStatus.FAILED, f"{type(exc).__name__}: {exc}", True
        finished = _now()
        self.metrics.steps.labels(step.action, str(status)).inc()
        self.metrics.step_seconds.labels(step.action).observe(finished - started)
        policy = step.retry or action.retry
        retry_in = (
            policy.delay(attempt)
            if (status == StepStatus.FAILED and retryable and attempt < policy.max_attempts)
            else None
        )
        recorded_params = mask_secrets(params, secret_values) if params is not None else None
        if not isinstance(outputs, dict):
            outputs = {"result": outputs}
        outputs = mask_secrets(outputs, secret_values)
        logs = mask_secrets(ctx.logs, secret_values)
        error = mask_secrets(error, secret_values) if error else None
        await self._complete(
            row,
            definition,
            status,
            recorded_params,
            outputs,
            logs,
            error,
            started,
            finished,
            retry_in,
        )

    async def _complete(
        self,
        row: dict[str, Any],
        definition: PipelineDef,
        status: StepStatus,
        params: Any,
        outputs: dict[str, Any],
        logs: list[dict[str, Any]],
        error: str | None,
        started: float,
        finished: float,
        retry_in: float | None,
    ) -> None:
        execution_id, step_id, attempt = row["execution_id"], row["step_id"], row["attempts"]
        s = t.steps
        mine = (
            s.c.execution_id == execution_id,
            s.c.step_id == step_id,
            s.c.status == StepStatus.RUNNING,
            s.c.lease_owner == self.worker_id,
            s.c.attempts == attempt,
        )
        final: str | None = None
        following: list[dict[str, Any]] = []
        async with self.store.transaction() as tx:
            # Completions of one execution take turns, so the last one sees every step final.
            await tx.lock(t.executions, id=execution_id)
            await tx.insert(
                t.attempts,
                {
                    "execution_id": execution_id,
                    "step_id": step_id,
                    "attempt": attempt,
                    "status": "failed" if retry_in is not None else status,
                    "params": params,
                    "outputs": outputs,
                    "logs": logs,
                    "error": error,
                    "worker": self.worker_id,
                    "started_at": started,
                    "finished_at": finished,
                },
            )
            values: dict[str, Any] = {
                "params": params,
                "outputs": outputs,
                "logs": logs,
                "error": error,
                "lease_owner": None,
                "lease_expires_at": None,
            }
            if retry_in is not None:
                values.update(status=StepStatus.PENDING, ready_at=finished + retry_in)
            else:
                values.update(status=status, finished_at=finished)
            if not await tx.update(s, values, *mine):
                return  # cancelled, timed out or taken over meanwhile
            if retry_in is not None:
                return
            if status == StepStatus.FAILED and definition.step(step_id).on_failure == "fail":
                await scheduler.close_execution(
                    tx,
                    execution_id,
                    ExecutionStatus.FAILED,
                    f"step {step_id} failed: {error}",
                    finished,
                )
                final = "failed"
            else:
                ready, final = await scheduler.advance(tx, execution_id, definition, finished)
                free = self.settings.workers - len(self._running) + 1  # this step's slot frees now
                if ready and free > 0 and not self._stopping:
                    # Continue the execution here: no trip through the queue between its steps.
                    following = await tx.claim_steps(
                        self.worker_id,
                        _now(),
                        self.settings.lease_seconds,
                        min(free, len(ready)),
                        execution_id=execution_id,
                    )
        for next_row in following:
            self._spawn(next_row)
        if final:
            self.metrics.executions.labels(final).inc()
            if final == "failed":
                self._cancel_local(execution_id)
            await self._notify_finished()
        self.wake()

    async def _heartbeat(self, execution_id: str, step_id: str) -> None:
        interval = max(0.5, self.settings.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                async with self.store.transaction() as tx:
                    await tx.renew_leases(
                        self.worker_id,
                        [(execution_id, step_id)],
                        _now() + self.settings.lease_seconds,
                    )
                    row = await tx.get(t.steps, execution_id=execution_id, step_id=step_id)
                if (
                    row is None
                    or row["status"] != StepStatus.RUNNING
                    or row["lease_owner"] != self.worker_id
                ):
                    task = self._running.get((execution_id, step_id))
                    if task is not None:
                        task.cancel()
                    return
            except Exception:
                log.exception("lease renewal failed for %s/%s", execution_id, step_id)

    # -- what actions get ----------------------------------------------------------------
    def _delivery_recorder(
        self, execution_id: str, step_id: str, attempt: int, secret_values: Iterable[str]
    ) -> Any:
        secrets = list(secret_values)

        async def record(delivery: Mapping[str, Any]) -> None:
            async with self.store.transaction() as tx:
                await tx.insert(
                    t.deliveries,
                    {
                        "execution_id": execution_id,
                        "step_id": step_id,
                        "attempt": attempt,
                        "channel": delivery.get("channel", "?"),
                        "target": mask_secrets(delivery.get("target"), secrets),
                        "status": delivery.get("status", "failed"),
                        "status_code": delivery.get("status_code"),
                        "error": mask_secrets(delivery.get("error"), secrets),
                        "message": mask_secrets(delivery.get("message"), secrets),
                        "created_at": _now(),
                    },
                )

        return record

    def _emitter(self, execution: Mapping[str, Any]) -> Any:
        cause = execution.get("event") or {}

        async def emit(event_type: str, data: dict[str, Any], *, key: str) -> dict[str, Any]:
            envelope = {
                "event_type": event_type,
                "event_id": derived_event_id(key, event_type),
                "source": "bud",
                "data": data,
                "correlation_id": cause.get("correlation_id") or cause.get("event_id"),
                "causation_id": execution["id"],
                "depth": int(cause.get("depth") or 0) + 1,
            }
            return (await self.ingest([envelope], default_source="bud"))[0]

        return emit

    def causation(self, execution: Mapping[str, Any]) -> dict[str, Any]:
        cause = execution.get("event") or {}
        return {
            "correlation_id": cause.get("correlation_id") or cause.get("event_id"),
            "causation_id": execution["id"],
            "depth": int(cause.get("depth") or 0) + 1,
        }

    def _child_runner(self, execution: Mapping[str, Any]) -> Any:
        async def run(
            pipeline_id: str, params: dict[str, Any], *, wait: bool, key: str
        ) -> dict[str, Any]:
            async with self.store.transaction() as tx:
                pipeline = await tx.get(t.pipelines, id=pipeline_id)
                if pipeline is None:
                    raise ActionError(f"pipeline {pipeline_id} not found", retryable=False)
                child = await self.create_execution(
                    tx,
                    pipeline,
                    origin="manual",
                    trigger_id=None,
                    event=execution.get("event"),
                    params=params,
                    parent_key=key,
                )
                if child is None:
                    child = await tx.scalar(
                        select(t.executions.c.id).where(t.executions.c.parent_key == key)
                    )
            self.wake()
            if not wait:
                return {"execution_id": child, "status": "queued", "outputs": {}}
            while True:
                async with self.store.read() as tx:
                    row = await tx.get(t.executions, id=child)
                    assert row is not None
                    if row["status"] in ("succeeded", "failed", "cancelled"):
                        steps = await tx.list(
                            t.steps,
                            where=[t.steps.c.execution_id == child],
                            order="position",
                            descending=False,
                        )
                        break
                await self.wait_finished(0.5)
            outputs = {s["step_id"]: s["outputs"] or {} for s in steps}
            if row["status"] != "succeeded":
                raise ActionError(
                    f"child execution {child} {row['status']}: {row['error']}",
                    retryable=False,
                    outputs={"execution_id": child},
                )
            return {"execution_id": child, "status": row["status"], "outputs": outputs}

        return run
