"""Ingest: store new events, decide for every candidate trigger, start executions.

Everything an event causes is written in one transaction: the event row, a decision per
candidate trigger and the executions it started (with their first steps ready), or nothing.
Concurrent publishes share transactions (group commit); each caller still returns only once
the transaction holding its events has committed. Replays and debounced fires start their
executions through the same ``Launcher.fire`` as ingest.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from bud.clock import Clock
from bud.engine import waits
from bud.engine.catalogue import Catalogue
from bud.engine.firing import Launcher, Outcome, Start
from bud.engine.flow import ALL_RULES, FireBatch, Rule
from bud.engine.matcher import TriggerView
from bud.engine.metrics import Metrics
from bud.engine.records import derived_event_id, envelope_from_row
from bud.engine.signals import Signals
from bud.errors import ConflictError, NotFoundError, ValidationError
from bud.events import normalize_event
from bud.filters import summarize
from bud.settings import Settings
from bud.store import Repository, Session
from bud.store.records import DecisionRecord, EventRecord, IngestBatch, PipelineRecord

REPLAY_RULES = ALL_RULES - {Rule.DEBOUNCE}
DEBOUNCED_RULES = frozenset({Rule.BREAKER, Rule.CONCURRENCY})


class Ingestor:
    def __init__(
        self,
        repo: Repository,
        catalogue: Catalogue,
        launcher: Launcher,
        metrics: Metrics,
        settings: Settings,
        clock: Clock,
        signals: Signals,
    ) -> None:
        self.repo = repo
        self.catalogue = catalogue
        self.launcher = launcher
        self.metrics = metrics
        self.settings = settings
        self.clock = clock
        self.signals = signals
        self._pending: list[tuple[list[dict[str, Any]], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._cancelled: list[str] = []  # by cancel_on, told as finished once committed

    # -- accepting events ----------------------------------------------------------------
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
                self.catalogue.event_types,
                where="event" if single else f"events[{i}]",
                max_bytes=self.settings.max_event_bytes,
                default_source=default_source,
            )
            for i, raw in enumerate(raws)
        ]

    async def ingest(
        self, raws: Sequence[Any], *, default_source: str = "api", session: Session | None = None
    ) -> list[dict[str, Any]]:
        """Accept events: validate all, then store, match and start executions atomically.

        Returns the envelopes, each with ``duplicate`` set when its event_id was seen before.
        With ``session``, the events join that transaction (a platform change and its event).
        """
        envelopes = self.normalize(raws, default_source=default_source)
        if session is not None:
            await self.ingest_in(session, envelopes)
            return envelopes
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((envelopes, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="bud-ingest")
        await done
        return envelopes

    async def drain(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)

    async def _flush(self) -> None:
        """Group commit: every publish that queued while a transaction ran shares the next one."""
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self.repo.transaction() as session:
                    tripped = await self.ingest_in(
                        session, [e for envelopes, _ in batch for e in envelopes]
                    )
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            if tripped:
                await self.catalogue.refresh()
            for _, done in batch:
                if not done.done():
                    done.set_result(None)
            self.signals.wake()
            cancelled, self._cancelled = self._cancelled, []
            for execution_id in cancelled:
                await self.signals.finished(execution_id, "cancelled")

    async def ingest_in(self, session: Session, envelopes: list[dict[str, Any]]) -> bool:
        """Store new events with their decisions and executions; True if a breaker tripped."""
        now = self.clock.now()
        unique: dict[str, dict[str, Any]] = {}
        for env in envelopes:
            unique.setdefault(env["event_id"], env)
        known = await session.known_event_ids(list(unique))
        fresh = [env for env in unique.values() if env["event_id"] not in known]
        limit = self.settings.max_non_fired_decisions
        route = self.catalogue.matcher.route
        routed = [(env, route(env, explain_limit=limit)) for env in fresh]
        matched = [view for _env, r in routed for view in r.fired]
        pipelines: dict[str, PipelineRecord] = {}
        if matched:
            pipelines = await session.hold_for_firing(
                (v.id for v in matched), (v.pipeline_id for v in matched)
            )
        batch = FireBatch(now)
        ingest = IngestBatch()
        counted: Counter[tuple[str, str, str]] = Counter()  # metrics, counted once per batch
        filtered_out: Counter[str] = Counter()
        for env, r in routed:
            fired = 0
            event_type = env["event_type"]
            filtered_out[event_type] += len(r.filtered)  # the ids go on the event row
            for view in r.fired:
                row = _decision(env, view, "fired", "filter matched", now)
                ingest.decisions.append(row)
                outcome = await self.launcher.fire(
                    session, batch, Start(pipelines.get(view.pipeline_id), env, view, decision=row)
                )
                _settle(row, outcome)
                counted[event_type, view.id, row["outcome"]] += 1
                if outcome.execution_id is not None:
                    fired += 1
            for view in r.disabled:
                ingest.decisions.append(
                    _decision(env, view, "disabled", "trigger is disabled", now)
                )
                counted[event_type, view.id, "disabled"] += 1
            candidates = len(r.fired) + len(r.disabled) + len(r.filtered) + r.unexplained
            ingest.events.append(_event_row(env, now, fired, candidates, r.filtered))
        for (event_type, trigger_id, said), n in counted.items():
            self.metrics.decisions.labels(event_type, trigger_id, said).inc(n)
        for event_type, n in filtered_out.items():
            if n:
                self.metrics.filtered.labels(event_type).inc(n)
        ingest.executions, ingest.steps, ingest.fires = batch.executions, batch.steps, batch.fired
        inserted = await session.store_ingest(ingest)
        await session.count_fires(ingest.fires, now)
        for execution_id in batch.cancelled:
            self.signals.closed(execution_id)
        # Durable waits (wait_for_event, cancel_on) see each new event in this transaction.
        stored = [env for env in fresh if env["event_id"] in inserted]
        for execution_id in await waits.on_events(session, stored, now):
            self.metrics.executions.labels("cancelled").inc()
            self.signals.closed(execution_id)
            self._cancelled.append(execution_id)
        if batch.tripped:
            await self._emit_tripped(session, batch.tripped, now)
        seen: set[str] = set()
        for env in envelopes:
            env["duplicate"] = env["event_id"] not in inserted or env["event_id"] in seen
            seen.add(env["event_id"])
            if env["duplicate"]:
                self.metrics.duplicates.labels(env["event_type"]).inc()
            else:
                self.metrics.events.labels(env["event_type"]).inc()
        return bool(batch.tripped)

    async def _emit_tripped(
        self, session: Session, tripped: list[dict[str, Any]], now: float
    ) -> None:
        """Emit ``trigger.tripped`` for each tripped trigger, in this transaction."""
        envelopes = []
        for item in tripped:
            view = item["trigger"]
            self.catalogue.matcher.disable(view.id)
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
        await self.ingest_in(session, self.normalize(envelopes, default_source="bud"))

    # -- manual runs and run_pipeline children -------------------------------------------
    async def run(
        self,
        session: Session,
        pipeline: PipelineRecord,
        *,
        params: Mapping[str, Any],
        event: Mapping[str, Any] | None,
        parent_key: str | None = None,
    ) -> str | None:
        """Start a pipeline by request; None when ``parent_key`` already has an execution."""
        batch = FireBatch(self.clock.now())
        outcome = await self.launcher.fire(
            session,
            batch,
            Start(pipeline, event, path="manual", params=params, parent_key=parent_key),
        )
        if outcome.execution_id is None:
            raise ConflictError(f"the run was not started: {outcome.reason}")
        created = await self.launcher.flush(session, batch)
        self.signals.wake()
        return outcome.execution_id if outcome.execution_id in created else None

    # -- replay --------------------------------------------------------------------------
    async def replay(
        self, event_ids: list[str], *, trigger_id: str | None = None, bypass_dedup: bool = False
    ) -> dict[str, Any]:
        """Deliver stored events again to their matching triggers (or to one chosen trigger).

        With dedup honoured, a (trigger, event) pair that already has an execution is recorded
        as ``suppressed: already_fired``, and the trigger's dedup window applies; with
        ``bypass_dedup`` both are skipped and it runs again as a new delivery. The other flow
        rules (rate limit, breaker, concurrency) apply as at ingest; a replay is not debounced.
        """
        matcher = self.catalogue.matcher
        results: list[DecisionRecord] = []
        rules = REPLAY_RULES - {Rule.DEDUP} if bypass_dedup else REPLAY_RULES
        async with self.repo.transaction() as session:
            batch = FireBatch(self.clock.now())
            for event_id in event_ids:
                row = await session.get_event(event_id)
                if row is None:
                    raise NotFoundError(
                        f"event {event_id} not found", details={"event_id": event_id}
                    )
                env = envelope_from_row(row)
                ids = [trigger_id] if trigger_id else matcher.candidates(env["event_type"])
                views = [matcher.get(tid) for tid in ids]
                await session.hold_triggers(v.id for v in views if v is not None)
                for view in views:
                    if view is None:
                        raise NotFoundError(f"event trigger {trigger_id} not found")
                    previous = await session.executions_for(view.id, event_id)
                    outcome = await self._replay_one(
                        session, batch, view, env, previous, bypass_dedup, rules
                    )
                    decision: DecisionRecord = {
                        "event_id": event_id,
                        "trigger_id": view.id,
                        "pipeline_id": view.pipeline_id,
                        "outcome": outcome.outcome,
                        "reason_code": "replay" if outcome.outcome == "fired" else outcome.code,
                        "reason": f"replay: {outcome.reason}",
                        "detail": None,
                        "execution_id": outcome.execution_id,
                        "created_at": batch.now,
                    }
                    self.metrics.decisions.labels(env["event_type"], view.id, outcome.outcome).inc()
                    results.append(decision)
            await session.record_decisions(results)
            await self.launcher.flush(session, batch)
            if batch.tripped:
                await self._emit_tripped(session, batch.tripped, batch.now)
        if batch.tripped:
            await self.catalogue.refresh()
        for execution_id in batch.cancelled:
            self.signals.closed(execution_id)
        self.signals.wake()
        fired = [d for d in results if d["outcome"] == "fired"]
        return {
            "events": len(event_ids),
            "fired": len(fired),
            "executions": [d["execution_id"] for d in fired],
            "decisions": results,
        }

    async def _replay_one(
        self,
        session: Session,
        batch: FireBatch,
        view: Any,
        env: dict[str, Any],
        previous: list[Any],
        bypass_dedup: bool,
        rules: frozenset[str],
    ) -> Outcome:
        if view.event_type != env["event_type"]:
            return Outcome("filtered", "wrong_type", f"the trigger listens to {view.event_type}")
        verdict = view.filter.explain(env)
        if not verdict["matched"]:
            return Outcome("filtered", "filtered", summarize(verdict))
        if not view.enabled:
            return Outcome("disabled", "disabled", "trigger is disabled")
        if previous and not bypass_dedup and not env["test"]:
            return Outcome(
                "suppressed",
                "already_fired",
                f"already fired for this event (execution {previous[0]['id']}); "
                "replay with bypass_dedup to run it again",
            )
        pipeline = await session.get_pipeline(view.pipeline_id)
        delivery = max((p["delivery"] for p in previous), default=-1) + 1
        outcome = await self.launcher.fire(
            session,
            batch,
            Start(pipeline, env, view, path="replay", delivery=delivery, rules=rules),
        )
        if outcome.outcome == "fired":
            return Outcome("fired", None, "filter matched", outcome.execution_id)
        return outcome

    # -- a tick: one event, one chosen trigger ------------------------------------------
    async def ingest_for(
        self,
        session: Session,
        env: dict[str, Any],
        view: TriggerView,
        pipeline: PipelineRecord | None,
        *,
        path: str,
    ) -> Outcome:
        """Store an event fired at one trigger (a schedule's tick), with its decision and the
        execution it started, through ``Launcher.fire``; nothing when its id is stored."""
        now = self.clock.now()
        if await session.known_event_ids([env["event_id"]]):
            return Outcome("suppressed", "duplicate", f"event {env['event_id']} already stored")
        batch = FireBatch(now)
        row: DecisionRecord = {
            "event_id": env["event_id"],
            "trigger_id": view.id,
            "pipeline_id": view.pipeline_id,
            "outcome": "fired",
            "reason_code": None,
            "reason": "",
            "detail": None,
            "execution_id": None,
            "created_at": now,
        }
        outcome = await self.launcher.fire(
            session, batch, Start(pipeline, env, view, path=path, decision=row)
        )
        _settle(row, outcome)
        if outcome.outcome == "fired":
            row["reason"] = f"{path}: {outcome.reason}"
        self.metrics.decisions.labels(env["event_type"], view.id, outcome.outcome).inc()
        fired = 1 if outcome.execution_id is not None else 0
        ingest = IngestBatch(
            events=[_event_row(env, now, fired, 1, [])],
            decisions=[row],
            executions=batch.executions,
            steps=batch.steps,
            fires=batch.fired,
        )
        await session.store_ingest(ingest)
        await session.count_fires(ingest.fires, now)
        self.metrics.events.labels(env["event_type"]).inc()
        for execution_id in batch.cancelled:
            self.signals.closed(execution_id)
        if batch.tripped:
            await self._emit_tripped(session, batch.tripped, now)
        return outcome

    # -- debounced fires -----------------------------------------------------------------
    async def fire_debounced(self) -> None:
        """Fire each debounced event whose quiet period has passed (the last event wins)."""
        async with self.repo.transaction() as session:
            batch = FireBatch(self.clock.now())
            due = await session.take_due_debounces(batch.now, 100)
            for state in due:
                event_id = (state["value"] or {}).get("event_id")
                trigger_id = state["trigger_id"]
                event = await session.get_event(event_id) if event_id else None
                view = self.catalogue.matcher.get(trigger_id)
                if event is None or view is None or not view.enabled:
                    await session.settle_decision(
                        event_id or "",
                        trigger_id,
                        "debounced",
                        {
                            "outcome": "suppressed",
                            "reason_code": "trigger_gone",
                            "reason": "the trigger was disabled or deleted before the "
                            "debounce period ended",
                        },
                    )
                    continue
                await session.hold_triggers([view.id])
                pipeline = await session.get_pipeline(view.pipeline_id)
                outcome = await self.launcher.fire(
                    session,
                    batch,
                    Start(
                        pipeline,
                        envelope_from_row(event),
                        view,
                        path="debounce",
                        rules=DEBOUNCED_RULES,
                    ),
                )
                values: dict[str, Any] = {
                    "outcome": outcome.outcome,
                    "reason_code": outcome.code,
                    "execution_id": outcome.execution_id,
                    "reason": "fired after the debounce period (last event wins)"
                    if outcome.execution_id
                    else outcome.reason,
                }
                await session.settle_decision(event["event_id"], view.id, "debounced", values)
                self.metrics.decisions.labels(event["event_type"], view.id, outcome.outcome).inc()
                if outcome.execution_id is not None:
                    await session.add_event_fired(event["event_id"], 1)
            await self.launcher.flush(session, batch)
            if batch.tripped:
                await self._emit_tripped(session, batch.tripped, batch.now)
        if batch.tripped:
            await self.catalogue.refresh()
        for execution_id in batch.cancelled:
            self.signals.closed(execution_id)
        if due:
            self.signals.wake()


def _decision(
    env: Mapping[str, Any], view: TriggerView, outcome: str, reason: str, now: float
) -> DecisionRecord:
    return {
        "event_id": env["event_id"],
        "trigger_id": view.id,
        "pipeline_id": view.pipeline_id,
        "outcome": outcome,
        "reason_code": None if outcome == "fired" else outcome,
        "reason": reason,
        "detail": None,
        "execution_id": None,
        "created_at": now,
    }


def _settle(row: DecisionRecord, outcome: Outcome) -> None:
    row["outcome"] = outcome.outcome
    row["reason_code"] = outcome.code
    row["reason"] = outcome.reason
    row["execution_id"] = outcome.execution_id


def _event_row(
    env: Mapping[str, Any], now: float, fired: int, candidates: int, filtered: list[str]
) -> EventRecord:
    return {
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
        "candidate_count": candidates,
        "filtered": filtered or None,
    }
