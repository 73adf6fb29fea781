"""DAG transitions, applied inside one repository session.

A step becomes ready (``ready_at`` set) when every dependency is done: succeeded, skipped,
or failed with ``on_failure: continue``. A step that fails for good with ``on_failure: fail``
fails the execution and cancels what has not run. When every step is final the execution is.
"""

from __future__ import annotations

from bud.actions.registry import ActionRegistry
from bud.pipelines import PipelineDef
from bud.store import Session
from bud.store.records import (
    FINAL_STEP,
    HELD,
    ExecutionRecord,
    ExecutionStatus,
    StepRecord,
    StepStatus,
)

__all__ = ["HELD", "advance", "close_execution", "initial_steps"]


def _satisfied(row: StepRecord, definition: PipelineDef) -> bool:
    status = row["status"]
    if status in (StepStatus.SUCCEEDED, StepStatus.SKIPPED):
        return True
    if status == StepStatus.FAILED:
        return definition.step(row["step_id"]).on_failure == "continue"
    return False


async def advance(
    session: Session,
    execution_id: str,
    definition: PipelineDef,
    now: float,
    rows: list[StepRecord] | None = None,
    *,
    mark: bool = True,
) -> tuple[list[str], str | None, list[StepRecord]]:
    """Make ready every pending step whose dependencies are done; close a finished execution.

    ``rows`` are the execution's steps if the caller just read them. With ``mark`` false the
    steps found ready are not marked: the caller takes them (``Session.take_steps``) or marks
    them. Returns the step ids ready, the execution's new final status if it just ended, and
    the steps as read (their outputs are current; statuses are from before this call).
    """
    if rows is None:
        rows = await session.steps_of(execution_id)
    by_id = {r["step_id"]: r for r in rows}
    ready: list[str] = []
    for r in rows:
        if r["status"] != StepStatus.PENDING or r["ready_at"] is not None:
            continue
        if r["step_id"].endswith("]"):
            continue  # an item of a fan-out: its step makes it ready (bud.engine.fanout)
        step = definition.step(r["step_id"])
        if all(d in by_id and _satisfied(by_id[d], definition) for d in step.depends_on):
            if mark:
                await session.mark_ready(execution_id, r["step_id"], now)
            ready.append(r["step_id"])
    if ready or any(r["status"] not in FINAL_STEP for r in rows):
        return ready, None, rows
    hard_failures = [
        r
        for r in rows
        if r["status"] == StepStatus.FAILED
        and not r["step_id"].endswith("]")
        and definition.step(r["step_id"]).on_failure == "fail"
    ]
    if hard_failures:
        first = hard_failures[0]
        status, error = ExecutionStatus.FAILED, f"step {first['step_id']} failed: {first['error']}"
    else:
        status, error = ExecutionStatus.SUCCEEDED, None
    ended = await session.end_execution(execution_id, status, error, now)
    if ended is not None:
        if definition.uses_waits:
            await session.drop_waits(execution_id)
        await release_next(session, execution_id, now, ended)
    return [], (str(status) if ended is not None else None), rows


async def close_execution(
    session: Session, execution_id: str, status: ExecutionStatus, error: str | None, now: float
) -> bool:
    """Fail or cancel an open execution and cancel its unfinished steps."""
    ended = await session.end_execution(execution_id, status, error, now)
    if ended is not None:
        await session.cancel_open_steps(execution_id, now)
        await session.drop_waits(execution_id)
        await release_next(session, execution_id, now, ended)
    return ended is not None


async def release_next(
    session: Session, execution_id: str, now: float, row: ExecutionRecord | None = None
) -> str | None:
    """When an execution under a ``queue`` concurrency policy ends, start the next one held."""
    if row is None:
        row = await session.get_execution(execution_id)
    if row is None or row["trigger_id"] is None or row["concurrency_key"] is None:
        return None
    released = await session.release_next_held(row["trigger_id"], row["concurrency_key"], now)
    if released is not None:
        session.wake_workers(new_executions=True)
    return released


def initial_steps(
    execution_id: str,
    definition: PipelineDef,
    registry: ActionRegistry,
    now: float,
    held: bool = False,
) -> list[StepRecord]:
    return [
        {
            "execution_id": execution_id,
            "step_id": s.id,
            "position": i,
            "action": s.action,
            "status": StepStatus.PENDING,
            "attempts": 0,
            "attempt_base": 0,
            "max_attempts": (s.retry or registry.get(s.action).retry).max_attempts,
            "created_at": now,
            "ready_at": (HELD if held else now) if not s.depends_on else None,
        }
        for i, s in enumerate(definition.steps)
    ]
