"""The one fire path: every way a pipeline starts goes through ``Launcher.fire``.

A trigger's match at ingest, a replay, a debounced fire once its quiet period ends, a manual
run and a ``run_pipeline`` child all become a :class:`Start` and meet the same rules in the
same order: test events start nothing, the chain-depth guard, the pipeline must exist, the
trigger's flow rules (the path chooses which apply: a replay is not debounced, a debounced
fire was already deduplicated), then the execution and its first steps, the trigger's fire
count and breaker window, and the metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bud.engine.catalogue import Catalogue
from bud.engine.flow import ALL_RULES, FireBatch, FlowGate
from bud.engine.matcher import TriggerView
from bud.engine.metrics import Metrics
from bud.engine.records import execution_row
from bud.engine.scheduler import initial_steps
from bud.errors import BudError
from bud.settings import Settings
from bud.store import Session
from bud.store.records import DecisionRecord, PipelineRecord


@dataclass(frozen=True)
class Start:
    """A request to start a pipeline."""

    pipeline: PipelineRecord | None
    event: Mapping[str, Any] | None
    trigger: TriggerView | None = None
    path: str = "ingest"  # ingest | replay | debounce | manual
    params: Mapping[str, Any] = field(default_factory=dict)
    delivery: int = 0
    parent_key: str | None = None
    rules: frozenset[str] = ALL_RULES
    decision: DecisionRecord | None = None  # the ingest decision a debounce may supersede


@dataclass(frozen=True)
class Outcome:
    outcome: str  # fired | would_fire | suppressed | debounced | error
    code: str | None
    reason: str
    execution_id: str | None = None


class Launcher:
    def __init__(
        self, settings: Settings, catalogue: Catalogue, gate: FlowGate, metrics: Metrics
    ) -> None:
        self.settings = settings
        self.catalogue = catalogue
        self.gate = gate
        self.metrics = metrics

    async def fire(self, session: Session, batch: FireBatch, start: Start) -> Outcome:
        env = start.event
        if env is not None and env.get("test") and start.path != "manual":
            return Outcome("would_fire", "test", "test event: the filter matched, nothing started")
        depth = int(env.get("depth") or 0) if env is not None else 0
        if depth > self.settings.max_chain_depth:
            return Outcome(
                "suppressed",
                "chain_depth",
                f"event chain depth {depth} exceeds the limit of "
                f"{self.settings.max_chain_depth} (loop protection)",
            )
        pipeline = start.pipeline
        if pipeline is None:
            missing = start.trigger.pipeline_id if start.trigger else "?"
            return Outcome("error", "no_pipeline", f"pipeline {missing} not found")
        trigger = start.trigger
        key, held, reason = None, False, "started by request"
        if trigger is not None:
            assert env is not None
            verdict, key, held = await self.gate.check(
                session, trigger, env, batch, start.decision, start.rules
            )
            if verdict.outcome != "fired":
                return Outcome(verdict.outcome, verdict.code, verdict.reason)
            reason = verdict.reason
        try:
            definition = await self.catalogue.definition(
                pipeline["id"], pipeline["version"], session
            )
        except BudError as exc:  # it validated when saved; an action it uses is gone since
            return Outcome(
                "error",
                "invalid_pipeline",
                f"pipeline {pipeline['id']} version {pipeline['version']} cannot run: "
                f"{exc.message}",
            )
        execution = execution_row(
            pipeline,
            definition,
            origin="trigger" if trigger is not None else "manual",
            trigger_id=trigger.id if trigger is not None else None,
            event=dict(env) if env is not None else None,
            params=start.params,
            now=batch.now,
            parent_key=start.parent_key,
        )
        execution["concurrency_key"] = key
        execution["held"] = held
        execution["delivery"] = start.delivery
        batch.executions.append(execution)
        if not held:
            session.wake_workers(new_executions=True)
        batch.steps += initial_steps(
            execution["id"], definition, self.catalogue.registry, batch.now, held=held
        )
        if trigger is not None:
            if key is not None:
                batch.open_keys[(trigger.id, key)] = execution["id"]
            batch.fired[trigger.id] = batch.fired.get(trigger.id, 0) + 1
            self.metrics.fired.labels(trigger.id, trigger.event_type).inc()
        self.metrics.started.labels(start.path).inc()
        return Outcome("fired", None, reason, execution["id"])

    async def flush(self, session: Session, batch: FireBatch) -> set[str]:
        """Write what the batch started and count its fires; return the executions created.

        (Ingest stores its executions together with its events instead.)
        """
        created: set[str] = set()
        for execution in batch.executions:
            steps = [s for s in batch.steps if s["execution_id"] == execution["id"]]
            if await session.create_execution(
                execution, steps, once=execution.get("parent_key") is not None
            ):
                created.add(execution["id"])
        await session.count_fires(batch.fired, batch.now)
        return created
