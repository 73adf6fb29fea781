"""Workers: claim ready steps with a lease, run their actions, record, advance the DAG.

Steps run at least once: a worker that dies loses its lease and the step is claimed again.
The worker that finishes a step claims the steps it made ready itself, so an execution moves
from step to step without a trip through the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bud.actions.base import ActionContext, ActionError
from bud.engine import scheduler
from bud.engine.records import derived_event_id
from bud.engine.status import ExecutionStatus, StepStatus
from bud.errors import ValidationError
from bud.jsoncontract import find_problem, scrub_text  # helper:hardening
from bud.pipelines import PipelineDef
from bud.store import Tx
from bud.store import schema as t
from bud.templates import (
    TemplateError,
    build_context,
    is_falsy,
    mask_secrets,
    render_string,
    render_value,
)
from bud.timeutil import now as _now

if TYPE_CHECKING:
    from bud.engine.core import Engine

Hint = tuple[dict[str, Any], list[dict[str, Any]]]  # the execution row and its steps

log = logging.getLogger("bud.engine")


class Worker:
    CONFIG_TTL = 2.0

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._running: dict[tuple[str, str], asyncio.Task[Any]] = {}
        self._loops: list[asyncio.Task[Any]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._config_cache: (
            tuple[float, dict[str, str], dict[str, dict[str, Any]], dict[str, Any]] | None
        ) = None

    def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._work_loop(), name="bud-worker"),
            asyncio.create_task(self._sweep_loop(), name="bud-sweeper"),
        ]

    async def stop(self, grace: float) -> None:
        """Give running steps ``grace`` seconds, then cancel what is left.

        A step cancelled here keeps its lease and runs again after the next start.
        """
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
        self._loops.clear()

    async def _work_loop(self) -> None:
        slots = max(1, self.engine.settings.workers)
        while not self.engine.stopping:
            self.engine.wake_event.clear()
            free = slots - len(self._running)
            claimed: list[dict[str, Any]] = []
            if free > 0:
                try:
                    async with self.engine.store.transaction() as tx:
                        claimed = await tx.claim_steps(
                            self.engine.worker_id, _now(), self.engine.settings.lease_seconds, free
                        )
                except Exception:
                    log.exception("claiming steps failed")
                    await asyncio.sleep(self.engine.settings.poll_seconds)
            for row in claimed:
                self._spawn(row)
            if claimed and len(claimed) == free:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.engine.wake_event.wait(), self.engine.settings.poll_seconds
                )

    def _spawn(self, row: dict[str, Any], hint: Hint | None = None) -> None:
        key = (row["execution_id"], row["step_id"])
        task = asyncio.create_task(self._run_claimed(row, hint), name=f"step {key}")
        self._running[key] = task
        self.engine.metrics.running.inc()
        task.add_done_callback(functools.partial(self._step_done, key))

    def _step_done(self, key: tuple[str, str], _task: object = None) -> None:
        self._running.pop(key, None)
        self.engine.metrics.running.dec()
        self.engine.wake_event.set()

    async def _run_claimed(self, row: dict[str, Any], hint: Hint | None) -> None:
        try:
            await self._run_step(row, hint)
        except asyncio.CancelledError:
            if self.engine.stopping:
                raise
        except Exception:
            log.exception("step %s/%s crashed the worker", row["execution_id"], row["step_id"])

    async def _sweep_loop(self) -> None:
        while not self.engine.stopping:
            try:
                await self._sweep_timeouts()
                await self.engine.ingestor.fire_debounced()
            except Exception:
                log.exception("sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.engine.stopped.wait(), min(1.0, self.engine.settings.poll_seconds)
                )

    async def _sweep_timeouts(self) -> None:
        now = _now()
        async with self.engine.store.transaction() as tx:
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
                definition = await self.engine.definition(
                    tx, row["pipeline_id"], row["pipeline_version"]
                )
                await scheduler.close_execution(
                    tx,
                    row["id"],
                    ExecutionStatus.FAILED,
                    f"pipeline timed out after {definition.timeout_seconds:g}s",
                    now,
                )
        for row in late:
            self.engine.metrics.executions.labels("failed").inc()
            self.cancel_local(row["id"])
        if late:
            await self.engine.notify_finished()

    def invalidate_config(self) -> None:
        self._config_cache = None

    async def _config(
        self, tx: Tx
    ) -> tuple[dict[str, str], dict[str, dict[str, Any]], dict[str, Any]]:
        """Secrets, channels and pipeline names, re-read at most every CONFIG_TTL seconds."""
        cached = self._config_cache
        if cached is not None and cached[0] > _now():
            return cached[1], cached[2], cached[3]
        secrets = dict(self.engine.settings.secrets)
        secrets.update({r["name"]: r["value"] for r in await tx.list(t.secrets, order="name")})
        channels = self.engine.settings.channel_config()
        channels.update({r["name"]: r["config"] for r in await tx.list(t.channels, order="name")})
        names: dict[str, Any] = {}
        self._config_cache = (_now() + self.CONFIG_TTL, secrets, channels, names)
        return secrets, channels, names

    async def _load(
        self, execution_id: str
    ) -> tuple[dict[str, Any], list[dict[str, Any]], PipelineDef, Any] | None:
        """What a step needs to run: its execution (marked running), steps, config."""
        now = _now()
        async with self.engine.store.transaction() as tx:
            execution = await tx.get(t.executions, id=execution_id)
            if execution is None:
                return None
            definition = await self.engine.definition(
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
            step_rows = await tx.steps_of(execution_id)
            config = await self._config(tx)
            names = config[2]
            if execution["pipeline_id"] not in names:
                pipeline = await tx.get(t.pipelines, id=execution["pipeline_id"])
                names[execution["pipeline_id"]] = pipeline["name"] if pipeline else None
        return execution, step_rows, definition, config

    async def _run_step(self, row: dict[str, Any], hint: Hint | None = None) -> None:
        execution_id, step_id, attempt = row["execution_id"], row["step_id"], row["attempts"]
        if hint is not None:
            execution, step_rows = hint
            async with self.engine.store.read() as tx:
                definition = await self.engine.definition(
                    tx, execution["pipeline_id"], execution["pipeline_version"]
                )
                secrets, channels, names = await self._config(tx)
                if execution["pipeline_id"] not in names:
                    pipeline = await tx.get(t.pipelines, id=execution["pipeline_id"])
                    names[execution["pipeline_id"]] = pipeline["name"] if pipeline else None
        else:
            loaded = await self._load(execution_id)
            if loaded is None:
                return
            execution, step_rows, definition, (secrets, channels, names) = loaded
        step = definition.step(step_id)
        action = self.engine.registry.get(step.action)
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
            settings=self.engine.settings,
            platform=self.engine.platform,
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
                if is_falsy(value):
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
            if self.engine.stopping:
                raise
            return  # cancelled by request or timeout: the store already says so
        except Exception as exc:
            status, error, retryable = StepStatus.FAILED, f"{type(exc).__name__}: {exc}", True
        finished = _now()
        self.engine.metrics.steps.labels(step.action, str(status)).inc()
        self.engine.metrics.step_seconds.labels(step.action).observe(finished - started)
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
        # helper:hardening: a record no store can keep (NUL, lone surrogate, >64-bit int, NaN)
        # fails the step for good instead of failing the write (and re-running it forever).
        record = {"params": recorded_params, "outputs": outputs, "logs": logs}
        problem = find_problem(record, f"steps.{step_id}")
        if problem is not None:
            status, retry_in = StepStatus.FAILED, None
            error = f"{problem[0]}: {problem[1]}; the step's outputs were not recorded"
            recorded_params = recorded_params if find_problem(recorded_params) is None else None
            outputs, logs = {}, [e for e in logs if find_problem(e) is None]
        error = scrub_text(error) if error else None
        await self._complete(
            row,
            execution,
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
        execution: dict[str, Any],
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
        final: str | None = None
        following: list[dict[str, Any]] = []
        async with self.engine.store.transaction() as tx:
            # Completions of one execution take turns, so the last one sees every step final.
            await tx.hold(t.executions, id=execution_id)
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
                    "worker": self.engine.worker_id,
                    "started_at": started,
                    "finished_at": finished,
                },
            )
            values: dict[str, Any] = {
                "params": params,
                "outputs": outputs,
                "logs": logs,
                "error": error,
            }
            if retry_in is not None:
                values.update(status=StepStatus.PENDING, ready_at=finished + retry_in)
            else:
                values.update(status=status, finished_at=finished)
            if not await tx.record_step(
                execution_id, step_id, self.engine.worker_id, attempt, values
            ):
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
                ready, final, step_rows = await scheduler.advance(
                    tx, execution_id, definition, finished
                )
                free = (
                    self.engine.settings.workers - len(self._running) + 1
                )  # this step's slot frees now
                if ready and free > 0 and not self.engine.stopping:
                    # Continue the execution here: no trip through the queue between its steps.
                    following = await tx.claim_steps(
                        self.engine.worker_id,
                        _now(),
                        self.engine.settings.lease_seconds,
                        min(free, len(ready)),
                        execution_id=execution_id,
                    )
        for next_row in following:
            # The next step needs what this transaction just read: hand it over.
            self._spawn(next_row, (execution, step_rows))
        if final:
            self.engine.metrics.executions.labels(final).inc()
            if final == "failed":
                self.cancel_local(execution_id)
            await self.engine.notify_finished()
        self.engine.wake()

    async def _heartbeat(self, execution_id: str, step_id: str) -> None:
        interval = max(0.5, self.engine.settings.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                async with self.engine.store.transaction() as tx:
                    await tx.renew_leases(
                        self.engine.worker_id,
                        [(execution_id, step_id)],
                        _now() + self.engine.settings.lease_seconds,
                    )
                    row = await tx.get(t.steps, execution_id=execution_id, step_id=step_id)
                if (
                    row is None
                    or row["status"] != StepStatus.RUNNING
                    or row["lease_owner"] != self.engine.worker_id
                ):
                    task = self._running.get((execution_id, step_id))
                    if task is not None:
                        task.cancel()
                    return
            except Exception:
                log.exception("lease renewal failed for %s/%s", execution_id, step_id)

    def _delivery_recorder(
        self, execution_id: str, step_id: str, attempt: int, secret_values: Iterable[str]
    ) -> Any:
        secrets = list(secret_values)

        async def record(delivery: Mapping[str, Any]) -> None:
            async with self.engine.store.transaction() as tx:
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
            return (await self.engine.ingest([envelope], default_source="bud"))[0]

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
            async with self.engine.store.transaction() as tx:
                pipeline = await tx.get(t.pipelines, id=pipeline_id)
                if pipeline is None:
                    raise ActionError(f"pipeline {pipeline_id} not found", retryable=False)
                child = await self.engine.create_execution(
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
            self.engine.wake()
            if not wait:
                return {"execution_id": child, "status": "queued", "outputs": {}}
            while True:
                async with self.engine.store.read() as tx:
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
                await self.engine.wait_finished(0.5)
            outputs = {s["step_id"]: s["outputs"] or {} for s in steps}
            if row["status"] != "succeeded":
                raise ActionError(
                    f"child execution {child} {row['status']}: {row['error']}",
                    retryable=False,
                    outputs={"execution_id": child},
                )
            return {"execution_id": child, "status": row["status"], "outputs": outputs}

        return run

    def cancel_local(self, execution_id: str) -> None:
        for (exe, _step), task in list(self._running.items()):
            if exe == execution_id:
                task.cancel()
