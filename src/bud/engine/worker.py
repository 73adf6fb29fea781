"""Workers: claim ready steps with a lease, run their actions, record, advance the DAG.

Steps run at least once: a worker that dies loses its lease and the step is claimed again.
Every attempt is recorded when it starts (``running``, with its rendered params shown once it
has run a moment), so a running step is visible and an attempt cut short by a crash stays in
the history; such an interrupted attempt counts against ``max_attempts``. Whatever goes wrong
while running a step, before or inside its action, ends as a recorded failed attempt. The
worker that finishes a step claims the steps it made ready itself, so an execution moves
from step to step without a trip through the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from bud.actions.base import ActionContext, ActionError, RetryPolicy, Wait
from bud.clock import Clock
from bud.engine import fanout, scheduler, waits
from bud.engine.catalogue import Catalogue
from bud.engine.ingest import Ingestor
from bud.engine.metrics import Metrics
from bud.engine.records import derived_event_id
from bud.engine.signals import Signals
from bud.errors import BudError, ValidationError
from bud.ids import new_id
from bud.jsoncontract import find_problem, scrub_text
from bud.pipelines import PipelineDef
from bud.render_limits import RenderLimits
from bud.settings import Settings
from bud.store import Repository, Session, StepKey
from bud.store.group import GroupCommit
from bud.store.records import (
    FINAL_EXECUTION,
    FINAL_STEP,
    WAIT_KEY,
    AttemptRecord,
    ExecutionRecord,
    ExecutionStatus,
    StepRecord,
    StepStatus,
)
from bud.templates import (
    TemplateError,
    build_context,
    copy_json,
    is_falsy,
    mask_secrets,
    render_string_async,
    render_value_async,
)

Hint = tuple[ExecutionRecord, list[StepRecord]]  # the execution row and its steps, as read

log = logging.getLogger("bud.engine")

SHOW_AFTER = 0.05  # a step still running after this long gets its params and log written


@dataclass
class _Result:
    status: StepStatus = StepStatus.FAILED
    error: str | None = None
    retryable: bool = False
    outputs: Any = field(default_factory=dict)
    params: Any = None


class Worker:
    def __init__(
        self,
        repo: Repository,
        catalogue: Catalogue,
        ingestor: Ingestor,
        platform: Any,
        settings: Settings,
        metrics: Metrics,
        clock: Clock,
        signals: Signals,
        worker_id: str,
    ) -> None:
        self.repo = repo
        self.catalogue = catalogue
        self.ingestor = ingestor
        self.platform = platform
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.signals = signals
        self.worker_id = worker_id
        self.stopping = False
        self._running: dict[StepKey, asyncio.Task[Any]] = {}
        self._pipeline_of: dict[StepKey, str] = {}  # the pipeline of each running step
        self._handed = 0  # steps claimed by completions in a transaction not yet committed
        self._stragglers_at = float("-inf")  # when a claim last looked beyond running ones
        # Whether the next claim looks at running executions' steps first: always where the
        # store cannot tell new executions from those steps; else when told of such steps.
        self._running_first = True
        # Completions share transactions; on PostgreSQL two run side by side (docs/operations.md).
        self.commits = GroupCommit(repo, parallel=1 if repo.exclusive else 2)
        # Steps (kept, so their ids stay theirs) whose template-free params passed the check
        # of the action they name.
        self._checked: dict[int, tuple[Any, Any]] = {}
        self._loop: asyncio.Task[None] | None = None
        signals.on_closed(self.cancel_local)

    @functools.cached_property
    def limits(self) -> RenderLimits:
        return RenderLimits.from_settings(self.settings)

    @property
    def slots(self) -> int:
        return self.settings.step_slots

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def fair_share(self) -> int:
        """The most slots one pipeline may hold: the rest stay free for the others."""
        return max(1, self.slots - max(1, self.slots // 8))

    def _crowding(self) -> set[str]:
        """Pipelines holding their fair share of this worker's slots."""
        counts: dict[str, int] = {}
        for pipeline_id in self._pipeline_of.values():
            counts[pipeline_id] = counts.get(pipeline_id, 0) + 1
        return {p for p, n in counts.items() if n >= self.fair_share}

    def start(self) -> None:
        self._loop = asyncio.create_task(self._work_loop(), name="bud-worker")

    def steps_ready(self) -> None:
        """A commit made steps of running executions ready: the next claim looks there first."""
        self._running_first = True
        self.signals.wake()

    async def stop(self, grace: float) -> None:
        """Stop claiming; give running steps ``grace`` seconds, then give the rest back.

        A step given back is pending again and its cut-short attempt is not counted.
        """
        self.stopping = True
        self.signals.wake()
        running = list(self._running.values())
        if running:
            await asyncio.wait(running, timeout=grace)
        left = list(self._running)
        for task in self._running.values():
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
        if left:
            with contextlib.suppress(Exception):
                async with self.repo.transaction() as session:
                    await session.release_steps(self.worker_id, left, self.clock.now())
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)

    async def _work_loop(self) -> None:
        while not self.stopping:
            self.signals.work.clear()
            free = self.slots - len(self._running)
            claimed: list[tuple[StepRecord, Hint | None]] = []
            if free > 0:
                try:
                    claimed = await self._claim(free)
                except Exception:
                    log.exception("claiming steps failed")
                    await self.clock.sleep(self.settings.poll_seconds)
            for row, hint in claimed:
                self._spawn(row, hint)
            if claimed and len(claimed) == free:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.signals.work.wait(), self.settings.poll_seconds)

    async def _claim(self, limit: int) -> list[tuple[StepRecord, Hint | None]]:
        """Claim ready steps and, in the same transaction, read what each needs to run."""
        now = self.clock.now()
        # Waiting steps and run-out leases outside running executions: once per poll.
        stragglers = now - self._stragglers_at >= self.settings.poll_seconds
        running_first = self._running_first or stragglers
        self._running_first = not self.repo.tells_work
        try:
            return await self._claim_in(now, limit, stragglers, running_first)
        except BaseException:
            self._running_first = self._running_first or running_first
            raise

    async def _claim_in(
        self, now: float, limit: int, stragglers: bool, running_first: bool
    ) -> list[tuple[StepRecord, Hint | None]]:
        async with self.repo.transaction() as session:
            claimed = await session.claim_steps(
                self.worker_id,
                now,
                self.settings.lease_seconds,
                limit,
                skip_pipelines=self._crowding(),
                stragglers=stragglers,
                running_first=running_first,
            )
            if stragglers:
                self._stragglers_at = now
            await session.start_attempts(claimed, self.worker_id, now)
            # The claim holds its steps' rows: it takes an execution's row only if it is free
            # (a cancel or a completion holding it may be waiting for those steps).
            hints = await self._prepare_many(session, [r["execution_id"] for r in claimed], now)
            return [(row, hints.get(row["execution_id"])) for row in claimed]

    def _spawn(self, row: StepRecord, hint: Hint | None = None) -> None:
        key = (row["execution_id"], row["step_id"])
        task = asyncio.create_task(self._run_claimed(row, hint), name=f"step {key}")
        self._running[key] = task
        if row.get("pipeline_id"):
            self._pipeline_of[key] = row["pipeline_id"]
        self.metrics.running.inc()
        task.add_done_callback(functools.partial(self._step_done, key))

    def _step_done(self, key: StepKey, _task: object = None) -> None:
        self._running.pop(key, None)
        self._pipeline_of.pop(key, None)
        self.metrics.running.dec()
        self.signals.wake()

    async def _run_claimed(self, row: StepRecord, hint: Hint | None) -> None:
        try:
            await self._run_step(row, hint)
        except asyncio.CancelledError:
            if self.stopping:
                raise
        except Exception:
            # Recording itself failed (the store is down): the lease runs out and the step is
            # claimed again, as an attempt, once the store answers.
            log.exception("step %s/%s could not be recorded", row["execution_id"], row["step_id"])

    async def _prepare(
        self, row: StepRecord, hint: Hint | None
    ) -> tuple[ExecutionRecord, list[StepRecord]] | None:
        if hint is not None:
            return hint
        async with self.repo.transaction() as session:
            return await self._prepare_in(session, row, self.clock.now())

    async def _prepare_in(self, session: Session, row: StepRecord, now: float) -> Hint | None:
        """The step's execution (marked running if it was queued) and its steps, as read;
        None if the execution is gone."""
        execution = await session.get_execution(row["execution_id"])
        if execution is None:
            return None
        if execution["status"] == ExecutionStatus.QUEUED:
            execution = await self._open(session, execution, now)
        return execution, await session.steps_of(execution["id"])

    async def _prepare_many(
        self, session: Session, execution_ids: list[str], now: float
    ) -> dict[str, Hint]:
        """``_prepare_in`` for the executions of a claim, with a read for all of them at each
        stage. An execution left out (its row held elsewhere, or gone) prepares on its own."""
        executions = await session.executions_to_run(execution_ids)
        queued = [e for e in executions if e["status"] == ExecutionStatus.QUEUED]
        if queued:
            opening = [await self._deadline(session, e, now) for e in queued]
            await session.mark_running_many(
                [(e["id"], deadline) for e, (deadline, _d) in zip(queued, opening, strict=True)],
                now,
            )
            for e, (_deadline, definition) in zip(queued, opening, strict=True):
                await self._watch_cancel(session, e, definition, now)
        opened: list[ExecutionRecord] = [
            cast(ExecutionRecord, {**e, "status": ExecutionStatus.RUNNING, "started_at": now})
            if e["status"] == ExecutionStatus.QUEUED
            else e
            for e in executions
        ]
        steps = await session.steps_of_many([e["id"] for e in opened])
        return {e["id"]: (e, steps[e["id"]]) for e in opened}

    async def _open(
        self, session: Session, execution: ExecutionRecord, now: float
    ) -> ExecutionRecord:
        """A queued execution (its row held) starts running."""
        deadline, definition = await self._deadline(session, execution, now)
        await session.mark_running(execution["id"], now, deadline)
        await self._watch_cancel(session, execution, definition, now)
        return {**execution, "status": ExecutionStatus.RUNNING, "started_at": now}

    async def _deadline(
        self, session: Session, execution: ExecutionRecord, now: float
    ) -> tuple[float | None, PipelineDef | None]:
        """When a queued execution starting now times out, and its pipeline's definition."""
        try:
            definition = await self.catalogue.definition(
                execution["pipeline_id"], execution["pipeline_version"], session
            )
        except BudError:
            return None, None  # the step fails when it runs, with the reason
        timeout = definition.timeout_seconds
        return (now + timeout if timeout else None), definition

    async def _watch_cancel(
        self,
        session: Session,
        execution: ExecutionRecord,
        definition: PipelineDef | None,
        now: float,
    ) -> None:
        """An execution that starts running waits for its ``cancel_on`` events from now on."""
        if definition is not None and definition.cancel_on:
            found = await session.get_pipeline(execution["pipeline_id"])
            name = found["name"] if found else None
            rows = await waits.cancel_waits(execution, definition, name, now, self.limits)
            await session.add_waits(rows)

    async def _run_step(self, row: StepRecord, hint: Hint | None = None) -> None:
        execution_id, step_id, attempt = row["execution_id"], row["step_id"], row["attempts"]
        key = (execution_id, step_id)
        started = self.clock.now()
        result = _Result()
        definition: PipelineDef | None = None
        policy = RetryPolicy(max_attempts=row.get("max_attempts") or 1)
        on_failure = "fail"
        logs: list[dict[str, Any]] = []
        secret_values = self.catalogue.secret_values
        action_name = row.get("action", "?")
        execution_seen: ExecutionRecord | None = None
        timeout = 0.0
        fan_out = None  # the step, when it is a for_each step's own run
        try:
            prepared = await self._prepare(row, hint)
            if prepared is None:
                return  # the execution is gone
            execution, step_rows = prepared
            execution_seen = execution
            sole = _sole_open_step(step_rows, step_id)
            tries = attempt - int(row.get("attempt_base") or 0)
            if row.get("max_attempts") and tries > int(row["max_attempts"] or 0):
                raise _Exhausted(
                    f"attempt {attempt - 1} was interrupted (the process running it stopped) "
                    f"and no attempts are left (max_attempts {row['max_attempts']})"
                )
            parent_id, index = fanout.split(step_id)
            try:
                definition = await self.catalogue.definition(
                    execution["pipeline_id"], execution["pipeline_version"]
                )
                step = definition.step(parent_id)
                on_failure = step.on_failure
                action = self.catalogue.registry.get(step.action)
            except (BudError, KeyError) as exc:
                message = exc.message if isinstance(exc, BudError) else f"no step {exc}"
                raise _Unrunnable(
                    f"cannot run step {step_id}: pipeline {execution['pipeline_id']} version "
                    f"{execution['pipeline_version']} does not validate any more: {message}"
                ) from exc
            policy = step.retry or action.retry
            templated = step.templated
            ctx, context = await self._context(
                execution, step_rows, step_id, attempt, secret_values, templated
            )
            parked = row.get("outputs")
            if isinstance(parked, dict) and WAIT_KEY in parked:
                ctx.state = dict(parked[WAIT_KEY] or {})  # back from a durable wait
            logs = ctx.logs
            result.status = StepStatus.SUCCEEDED
            limits = self.limits
            if index is not None:  # an item of a fan-out: its condition was the step's
                fanout.item_context(context, step_rows, parent_id, index)
            elif step.for_each is not None:
                fan_out = step
            if step.condition is not None and index is None:
                value = await render_string_async(
                    step.condition, context, where=f"steps.{step_id}.condition", limits=limits
                )
                if is_falsy(value):
                    result.status = StepStatus.SKIPPED
                    ctx.log(f"skipped: condition {step.condition!r} is false")
            if result.status != StepStatus.SKIPPED and fan_out is not None:
                result.outputs = await fanout.run_parent(
                    fan_out,
                    execution_id,
                    int(row.get("position") or 0),
                    row.get("max_attempts"),
                    context,
                    ctx.state,
                    step_rows,
                    self.clock.now(),
                    limits,
                )
            elif result.status != StepStatus.SKIPPED:
                if templated:
                    params = await render_value_async(
                        step.params, context, where=f"steps.{step_id}.params", limits=limits
                    )
                else:
                    params = copy_json(step.params)
                result.params = params
                ctx.params = params
                if templated or self._checked.get(id(step)) != (step, action):
                    action.check_params(params, where=f"steps.{step_id}.params", rendered=True)
                    if not templated:  # the same params every run: checked once per action
                        self._checked[id(step)] = (step, action)
                timeout = step.timeout_seconds or action.timeout_seconds
                # Most steps finish in well under SHOW_AFTER: only a step still running then
                # gets a heartbeat task (its attempt shown, its lease renewed).
                beats: list[asyncio.Task[None]] = []
                later = asyncio.get_running_loop().call_later(
                    SHOW_AFTER,
                    lambda: beats.append(
                        asyncio.create_task(self._heartbeat(key, attempt, ctx, secret_values))
                    ),
                )
                try:
                    async with asyncio.timeout(timeout):
                        result.outputs = await action(ctx, params)
                except TimeoutError:
                    raise ActionError(f"timed out after {timeout:g}s") from None
                finally:
                    later.cancel()
                    for beat in beats:
                        beat.cancel()
        except Wait as wait:
            begun = float(row.get("started_at") or started)
            # A wait for events or for a fan-out's items has its own timeout.
            if wait.events or isinstance(wait, fanout.Spawn) or wait.until <= begun + timeout:
                await self._park(row, wait)
                return
            result.status, result.retryable = StepStatus.FAILED, True  # like any timeout
            result.error = f"timed out after {timeout:g}s (its wait would end after that)"
        except (TemplateError, ValidationError) as exc:
            result.status, result.error, result.retryable = StepStatus.FAILED, exc.message, False
        except ActionError as exc:
            result.status, result.error, result.retryable = (
                StepStatus.FAILED,
                exc.message,
                exc.retryable,
            )
            result.outputs = exc.outputs
        except _Exhausted as exc:
            result.status, result.error, result.retryable = StepStatus.FAILED, str(exc), False
        except _Unrunnable as exc:  # may heal (the action registered again): retried as set
            result.status, result.error, result.retryable = StepStatus.FAILED, str(exc), True
        except asyncio.CancelledError:
            if self.stopping:
                raise
            return  # cancelled by request or timeout: the store already says so
        except BudError as exc:
            result.status, result.error, result.retryable = StepStatus.FAILED, exc.message, True
        except Exception as exc:
            result.status, result.retryable = StepStatus.FAILED, True
            result.error = f"{type(exc).__name__}: {exc}"
        finished = self.clock.now()
        self.metrics.steps.labels(action_name, str(result.status)).inc()
        self.metrics.step_seconds.labels(action_name).observe(finished - started)
        tries = attempt - int(row.get("attempt_base") or 0)
        retry_in = (
            policy.delay(tries)
            if result.status == StepStatus.FAILED
            and result.retryable
            and tries < policy.max_attempts
            else None
        )
        outputs = result.outputs if isinstance(result.outputs, dict) else {"result": result.outputs}
        params = mask_secrets(result.params, secret_values) if result.params is not None else None
        outputs = mask_secrets(outputs, secret_values)
        logs = mask_secrets(logs, secret_values)
        error = mask_secrets(result.error, secret_values) if result.error else None
        status = result.status
        # A record no store can keep (NUL, a lone surrogate, an integer past 64 bits, NaN)
        # fails the step for good instead of failing the write (and re-running it for ever).
        problem = find_problem(
            {"params": params, "outputs": outputs, "logs": logs}, f"steps.{step_id}"
        )
        if problem is not None:
            status, retry_in = StepStatus.FAILED, None
            error = f"{problem[0]}: {problem[1]}; the step's outputs were not recorded"
            params = params if find_problem(params) is None else None
            outputs, logs = {}, [e for e in logs if find_problem(e) is None]
        await self._complete(
            row,
            execution_seen,
            definition,
            on_failure,
            status,
            params,
            outputs,
            logs,
            scrub_text(error) if error else None,
            finished,
            retry_in,
            sole,
        )

    async def _context(
        self,
        execution: ExecutionRecord,
        step_rows: list[StepRecord],
        step_id: str,
        attempt: int,
        secret_values: list[str],
        templated: bool = True,
    ) -> tuple[ActionContext, dict[str, Any]]:
        """The action's context and, when the step has templates, what they render from."""
        execution_id = execution["id"]
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
            channels=self.catalogue.channels,
            clock=self.clock,
        )
        if not templated:
            return ctx, {}
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
                "name": await self.catalogue.pipeline_name(execution["pipeline_id"]),
            },
            execution={
                "id": execution_id,
                "trigger_id": execution["trigger_id"],
                "event_id": execution["event_id"],
                "origin": execution["origin"],
            },
            trigger={"id": execution["trigger_id"]} if execution["trigger_id"] else {},
            params=execution["params"],
            secrets=self.catalogue.secrets,
        )
        return ctx, context

    async def _complete(
        self,
        row: StepRecord,
        execution: ExecutionRecord | None,
        definition: PipelineDef | None,
        on_failure: str,
        status: StepStatus,
        params: Any,
        outputs: dict[str, Any],
        logs: list[dict[str, Any]],
        error: str | None,
        finished: float,
        retry_in: float | None,
        sole: bool = False,
    ) -> None:
        """Record the step's end and move its execution on, in a shared transaction.

        ``sole``: no other step of the execution was open when this one started, so no other
        completion of it can run meanwhile and the step's own write may take the execution's
        row (one round trip less).
        """
        execution_id, step_id, attempt = row["execution_id"], row["step_id"], row["attempts"]
        handed = [0]  # steps this unit claimed for this worker (a unit may run twice)

        async def work(session: Session) -> tuple[str | None, list[StepRecord], Hint | None]:
            self._handed -= handed[0]
            handed[0] = 0
            final: str | None = None
            following: list[StepRecord] = []
            hint: Hint | None = None
            seen = execution
            step: dict[str, Any] = {
                "params": params,
                "outputs": outputs,
                "logs": logs,
                "error": error,
            }
            if retry_in is not None:
                step.update(status=StepStatus.PENDING, ready_at=finished + retry_in)
            else:
                step.update(status=status, finished_at=finished)
            record: AttemptRecord = {
                "status": StepStatus.FAILED if retry_in is not None else status,
                "params": params,
                "outputs": outputs,
                "logs": logs,
                "error": error,
                "finished_at": finished,
            }
            item = fanout.is_item(step_id)
            fails = status == StepStatus.FAILED and on_failure == "fail" and not item
            rows: list[StepRecord] | None = None
            advancing = retry_in is None and definition is not None and not item and not fails
            # Completions of one execution take turns, so the last one sees every step final.
            if not (advancing and sole):
                await session.hold_execution(execution_id)
            ahead: list[StepRecord] = []  # the steps this one's success surely made ready
            if advancing:
                # The DAG moves on from here: record, claim what surely follows and read the
                # steps in one go.
                assert definition is not None
                sure = self._sure_next(definition, step_id, status, seen)
                done = await session.finish_and_take(
                    (execution_id, step_id),
                    self.worker_id,
                    attempt,
                    step,
                    record,
                    sure,
                    self.clock.now(),
                    self.settings.lease_seconds,
                    hold=sole,
                )
                if done is None:
                    return None, [], None  # cancelled, timed out or taken over meanwhile
                rows, ahead = done
            elif not await session.finish_attempt(
                (execution_id, step_id), self.worker_id, attempt, step, record
            ):
                return None, [], None
            if retry_in is not None:
                return None, [], None
            if fails:
                await scheduler.close_execution(
                    session,
                    execution_id,
                    ExecutionStatus.FAILED,
                    f"step {step_id} failed: {error}",
                    finished,
                )
                final = "failed"
            elif definition is not None:
                # This step's slot goes to what it made ready, and so do slots free besides
                # (less what other completions of this transaction took).
                free = self.slots - len(self._running) + 1 - self._handed
                free = 0 if self.stopping else max(1, free)
                now = self.clock.now()
                if item:  # an item of a fan-out: the next item, or back to its step
                    ready, step_rows = await fanout.item_done(
                        session, execution_id, step_id, definition, finished
                    )
                    if ready and free:
                        following = await session.claim_steps(
                            self.worker_id,
                            now,
                            self.settings.lease_seconds,
                            min(free, len(ready)),
                            execution_id=execution_id,
                        )
                        await session.start_attempts(following, self.worker_id, now)
                else:
                    ready, final, step_rows = await scheduler.advance(
                        session, execution_id, definition, finished, rows, mark=False
                    )
                    # Continue the execution here: no trip through the queue between its
                    # steps. What this worker does not take is left ready for any worker.
                    following = list(ahead)
                    take = ready[: max(0, free - len(ahead))]
                    cap = seen.get("max_parallel") if seen is not None else None
                    if cap and take:
                        busy = sum(1 for r in step_rows if r["status"] == StepStatus.RUNNING)
                        take = take[: max(0, int(cap) - busy)]
                    if take:
                        following += await session.take_steps(
                            execution_id, take, self.worker_id, now, self.settings.lease_seconds
                        )
                    taken = {r["step_id"] for r in following}
                    for left in ready:
                        if left not in taken:
                            await session.mark_ready(execution_id, left, finished)
                handed[0] = len(following)
                self._handed += handed[0]
                if following and seen is None:
                    seen = await session.get_execution(execution_id)
                if following and seen is not None:
                    hint = (seen, step_rows)
                if len(following) - len(ahead) < len(ready):
                    session.wake_workers()  # more is ready than this worker takes on
            return final, following, hint

        try:
            final, following, hint = await self.commits.run(work, key=execution_id)
        finally:
            self._handed -= handed[0]
        for next_row in following:
            # The next step needs what this transaction just read: hand it over.
            self._spawn(next_row, hint)
        if final:
            self.metrics.executions.labels(final).inc()
            if final == "failed":
                self.cancel_local(execution_id)
            await self.signals.finished(execution_id, final)
        self.signals.wake()

    def _sure_next(
        self,
        definition: PipelineDef,
        step_id: str,
        status: StepStatus,
        execution: ExecutionRecord | None,
    ) -> list[str]:
        """The steps that ``step_id`` ending with ``status`` makes ready whatever the others'
        state (it is their only dependency), as many as this worker takes on now: claimed by
        the statement that records the step. None under ``max_parallel`` (its count needs
        the steps read first) or while stopping."""
        if status not in (StepStatus.SUCCEEDED, StepStatus.SKIPPED) or self.stopping:
            return []
        if execution is None or execution.get("max_parallel"):
            return []
        free = max(1, self.slots - len(self._running) + 1 - self._handed)
        sole = [
            d for d in definition.dependents(step_id) if definition.step(d).depends_on == (step_id,)
        ]
        return sole[:free]

    async def _park(self, row: StepRecord, wait: Wait) -> None:
        """A durable wait: the step leaves its slot and comes back at ``wait.until``."""
        key = (row["execution_id"], row["step_id"])
        now = self.clock.now()
        async with self.repo.transaction() as session:
            await session.hold_execution(key[0])
            parked = await session.suspend_step(
                key, self.worker_id, row["attempts"], wait.until, wait.state
            )
            if parked and wait.events:
                rows = waits.step_waits(*key, new_id("wait"), wait.events, now)
                await session.add_waits(rows)
            if (
                parked
                and isinstance(wait, fanout.Spawn)
                and await fanout.spawn(session, key[0], wait, now)
            ):
                session.wake_workers()
        self.signals.wake()

    async def _heartbeat(
        self, key: StepKey, attempt: int, ctx: ActionContext, secret_values: list[str]
    ) -> None:
        """Show the running attempt, then keep its lease and its log current."""
        interval = max(0.5, self.settings.lease_seconds / 3)
        shown = -1
        while True:
            try:
                async with self.repo.transaction() as session:
                    if len(ctx.logs) != shown:
                        shown = len(ctx.logs)
                        await session.show_attempt(
                            key,
                            attempt,
                            mask_secrets(ctx.params, secret_values),
                            mask_secrets(list(ctx.logs), secret_values),
                        )
                    held = await session.renew_leases(
                        self.worker_id, [key], self.clock.now() + self.settings.lease_seconds
                    )
                if key not in held:
                    task = self._running.get(key)
                    if task is not None:
                        task.cancel()
                    return
            except Exception:
                log.exception("lease renewal failed for %s/%s", *key)
            await self.clock.sleep(min(interval, 1.0) if ctx.logs else interval)

    def _delivery_recorder(
        self, execution_id: str, step_id: str, attempt: int, secret_values: list[str]
    ) -> Any:
        async def record(delivery: Mapping[str, Any]) -> None:
            async with self.repo.transaction() as session:
                await session.record_delivery(
                    {
                        "execution_id": execution_id,
                        "step_id": step_id,
                        "attempt": attempt,
                        "channel": delivery.get("channel", "?"),
                        "target": mask_secrets(delivery.get("target"), secret_values),
                        "status": delivery.get("status", "failed"),
                        "status_code": delivery.get("status_code"),
                        "error": mask_secrets(delivery.get("error"), secret_values),
                        "message": mask_secrets(delivery.get("message"), secret_values),
                        "created_at": self.clock.now(),
                    }
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
            return (await self.ingestor.ingest([envelope], default_source="bud"))[0]

        return emit

    def _child_runner(self, execution: Mapping[str, Any]) -> Any:
        async def run(
            pipeline_id: str, params: dict[str, Any], *, wait: bool, key: str
        ) -> dict[str, Any]:
            async with self.repo.transaction() as session:
                pipeline = await session.get_pipeline(pipeline_id)
                if pipeline is None:
                    raise ActionError(f"pipeline {pipeline_id} not found", retryable=False)
                child = await self.ingestor.run(
                    session, pipeline, params=params, event=execution.get("event"), parent_key=key
                )
                if child is None:
                    child = await session.execution_by_parent_key(key)
            assert child is not None
            if not wait:
                return {"execution_id": child, "status": "queued", "outputs": {}}
            while True:
                async with self.repo.read() as session:
                    row = await session.get_execution(child)
                    assert row is not None
                    if row["status"] in FINAL_EXECUTION:
                        steps = await session.steps_of(child)
                        break
                await self.signals.wait_finished(0.5)
            outputs = {s["step_id"]: s["outputs"] or {} for s in steps}
            if row["status"] != ExecutionStatus.SUCCEEDED:
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


def _sole_open_step(rows: list[StepRecord], step_id: str) -> bool:
    """Whether ``step_id`` is the execution's only open step: every other one is final, or
    pending on dependencies (only a completion of an open step can make it ready)."""
    return all(
        r["step_id"] == step_id
        or r["status"] in FINAL_STEP
        or (r["status"] == StepStatus.PENDING and r["ready_at"] is None)
        for r in rows
    )


class _Exhausted(Exception):
    """The step's last allowed attempt was interrupted."""


class _Unrunnable(Exception):
    """The step's definition or its action cannot be found any more."""
