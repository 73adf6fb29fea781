"""Ingest: store new events, decide for every candidate trigger, start executions.

Everything an event causes is written in one transaction: the event row, a decision per
candidate trigger and the executions it started (with their first steps ready), or nothing.
Concurrent publishes share transactions (group commit); each caller still returns only once
the transaction holding its events has committed.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bud.engine import scheduler
from bud.engine.flow import BatchState
from bud.engine.records import derived_event_id, envelope_from_row, execution_row
from bud.errors import NotFoundError
from bud.filters import summarize
from bud.store import Tx
from bud.store import schema as t
from bud.timeutil import now as _now

if TYPE_CHECKING:
    from bud.engine.core import Engine


class Ingestor:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pending: list[tuple[list[dict[str, Any]], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def accept(self, envelopes: list[dict[str, Any]], tx: Tx | None) -> None:
        """Ingest validated envelopes: inside ``tx`` when given, else in a shared transaction."""
        if tx is not None:
            await self.ingest_in(tx, envelopes)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((envelopes, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="bud-ingest")
        await done

    async def drain(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)

    async def _flush(self) -> None:
        """Group commit: every publish that queued while a transaction ran shares the next one."""
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self.engine.store.transaction() as tx:
                    await self.ingest_in(tx, [e for envelopes, _ in batch for e in envelopes])
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)
                self.engine.wake()

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
            (
                env,
                *self.engine.matcher.decide(
                    env, explain_limit=self.engine.settings.max_non_fired_decisions
                ),
            )
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
            filtered: list[str] = []
            first = len(decision_rows)
            for d in decisions:
                if d.outcome == "filtered":
                    # Kept on the event row (one write, not one per trigger); explained on read.
                    filtered.append(d.trigger.id)
                    self.engine.filtered_counts[d.trigger.id] += 1
                    self.engine.metrics.decisions.labels(
                        env["event_type"], d.trigger.id, "filtered"
                    ).inc()
                    continue
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
                elif env["depth"] > self.engine.settings.max_chain_depth:
                    row.update(
                        outcome="suppressed",
                        reason_code="chain_depth",
                        reason=f"event chain depth {env['depth']} exceeds the limit of "
                        f"{self.engine.settings.max_chain_depth} (loop protection)",
                    )
                elif pipeline is None:
                    row.update(
                        outcome="error",
                        reason_code="no_pipeline",
                        reason=f"pipeline {d.trigger.pipeline_id} not found",
                    )
                else:
                    verdict, key, held = await self.engine.gate.check(
                        tx, d.trigger, env, now, batch, row
                    )
                    row.update(
                        outcome=verdict.outcome, reason_code=verdict.code, reason=verdict.reason
                    )
                    if verdict.outcome == "fired":
                        definition = await self.engine.definition(
                            tx, pipeline["id"], pipeline["version"]
                        )
                        execution = execution_row(
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
                        self.engine.fire_counter.add(
                            d.trigger.id, now, self._breaker_window(d.trigger)
                        )
                        self.engine.metrics.fired.labels(d.trigger.id, env["event_type"]).inc()
            for row in decision_rows[first:]:
                self.engine.metrics.decisions.labels(
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
                    "filtered": filtered or None,
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
            self.engine.worker.cancel_local(execution_id)
        if batch.tripped:
            await self._tripped(tx, batch.tripped, now)
        seen: set[str] = set()
        for env in envelopes:
            env["duplicate"] = env["event_id"] not in inserted or env["event_id"] in seen
            seen.add(env["event_id"])
            if env["duplicate"]:
                self.engine.metrics.duplicates.labels(env["event_type"]).inc()
            else:
                self.engine.metrics.events.labels(env["event_type"]).inc()

    def _breaker_window(self, view: Any) -> float:
        rule = (view.flow or {}).get("circuit_breaker")
        return (
            float(rule["window_seconds"])
            if rule
            else float(self.engine.settings.breaker_window_seconds)
        )

    async def _tripped(self, tx: Tx, tripped: list[dict[str, Any]], now: float) -> None:
        """Disable tripped triggers and emit ``trigger.tripped`` for each, in this transaction."""
        envelopes = []
        for item in tripped:
            view = item["trigger"]
            self.engine.matcher.disable(view.id)
            self.engine.fire_counter.forget(view.id)
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
        await self.ingest_in(tx, self.engine.normalize(envelopes, default_source="bud"))

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
        async with self.engine.store.transaction() as tx:
            for event_id in event_ids:
                row = await tx.get(t.events, event_id=event_id)
                if row is None:
                    raise NotFoundError(
                        f"event {event_id} not found", details={"event_id": event_id}
                    )
                env = envelope_from_row(row)
                views = (
                    [self.engine.matcher.get(trigger_id)]
                    if trigger_id
                    else [
                        self.engine.matcher.get(tid)
                        for tid in self.engine.matcher.candidates(env["event_type"])
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
                        execution_id = await self.engine.create_execution(
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
                    self.engine.metrics.decisions.labels(env["event_type"], view.id, outcome).inc()
                    if execution_id is not None:
                        self.engine.metrics.fired.labels(view.id, env["event_type"]).inc()
                    await tx.insert(t.decisions, decision)
                    results.append(decision)
        self.engine.wake()
        fired = [d for d in results if d["outcome"] == "fired"]
        return {
            "events": len(event_ids),
            "fired": len(fired),
            "executions": [d["execution_id"] for d in fired],
            "decisions": results,
        }

    async def fire_debounced(self) -> None:
        """Fire each debounced event whose quiet period has passed (the last event wins)."""
        now = _now()
        st = t.trigger_state
        async with self.engine.store.transaction() as tx:
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
                view = self.engine.matcher.get(state["trigger_id"])
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
                execution_id = await self.engine.create_execution(
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
            self.engine.wake()
