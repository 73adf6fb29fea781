"""DAG transitions, applied inside one store transaction.

A step becomes ready (``ready_at`` set) when every dependency is done: succeeded, skipped,
or failed with ``on_failure: continue``. A step that fails for good with ``on_failure: fail``
fails the execution and cancels what has not run. When every step is final the execution is.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_

from bud.engine.flow import HELD
from bud.engine.status import FINAL_STEP, ExecutionStatus, StepStatus
from bud.pipelines import PipelineDef
from bud.store import Tx
from bud.store import schema as t

OPEN_STEPS = (StepStatus.PENDING, StepStatus.RUNNING, StepStatus.WAITING)


def _satisfied(row: dict[str, Any], definition: PipelineDef) -> bool:
    status = row["status"]
    if status in (StepStatus.SUCCEEDED, StepStatus.SKIPPED):
        return True
    if status == StepStatus.FAILED:
        return definition.step(row["step_id"]).on_failure == "continue"
    return False


async def advance(
    tx: Tx, execution_id: str, definition: PipelineDef, now: float
) -> tuple[list[str], str | None, list[dict[str, Any]]]:
    """Make ready every pending step whose dependencies are done; close a finished execution.

    Returns the step ids made ready, the execution's new final status if it just ended, and
    the steps as read (their outputs are current; statuses are from before this call).
    """
    rows = await tx.steps_of(execution_id)
    by_id = {r["step_id"]: r for r in rows}
    ready: list[str] = []
    for r in rows:
        if r["status"] != StepStatus.PENDING or r["ready_at"] is not None:
            continue
        step = definition.step(r["step_id"])
        if all(d in by_id and _satisfied(by_id[d], definition) for d in step.depends_on):
            await tx.mark_ready(execution_id, r["step_id"], now)
            ready.append(r["step_id"])
    if ready or any(r["status"] not in FINAL_STEP for r in rows):
        return ready, None, rows
    hard_failures = [
        r
        for r in rows
        if r["status"] == StepStatus.FAILED and definition.step(r["step_id"]).on_failure == "fail"
    ]
    if hard_failures:
        first = hard_failures[0]
        status, error = ExecutionStatus.FAILED, f"step {first['step_id']} failed: {first['error']}"
    else:
        status, error = ExecutionStatus.SUCCEEDED, None
    changed = await tx.update(
        t.executions,
        {"status": status, "error": error, "finished_at": now},
        t.executions.c.id == execution_id,
        t.executions.c.status.in_((ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)),
    )
    if changed:
        await release_next(tx, execution_id, now)
    return [], (str(status) if changed else None), rows


async def close_execution(
    tx: Tx, execution_id: str, status: ExecutionStatus, error: str | None, now: float
) -> bool:
    """Fail or cancel an open execution and cancel its unfinished steps."""
    changed = await tx.update(
        t.executions,
        {"status": status, "error": error, "finished_at": now},
        t.executions.c.id == execution_id,
        t.executions.c.status.in_((ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)),
    )
    if changed:
        await tx.update(
            t.steps,
            {
                "status": StepStatus.CANCELLED,
                "finished_at": now,
                "lease_owner": None,
                "lease_expires_at": None,
                "ready_at": None,
            },
            and_(t.steps.c.execution_id == execution_id, t.steps.c.status.in_(OPEN_STEPS)),
        )
        await release_next(tx, execution_id, now)
    return bool(changed)


async def release_next(tx: Tx, execution_id: str, now: float) -> str | None:
    """When an execution under a ``queue`` concurrency policy ends, start the next one held."""
    row = await tx.get(t.executions, id=execution_id)
    if row is None or row["trigger_id"] is None or row["concurrency_key"] is None:
        return None
    e = t.executions
    waiting = await tx.list(
        e,
        where=[
            e.c.trigger_id == row["trigger_id"],
            e.c.concurrency_key == row["concurrency_key"],
            e.c.held.is_(True),
            e.c.status == ExecutionStatus.QUEUED,
        ],
        order="id",
        descending=False,
        limit=1,
    )
    if not waiting:
        return None
    nxt = waiting[0]["id"]
    await tx.update(e, {"held": False}, e.c.id == nxt)
    await tx.update(
        t.steps, {"ready_at": now}, t.steps.c.execution_id == nxt, t.steps.c.ready_at >= HELD
    )
    return str(nxt)


def initial_steps(
    execution_id: str, definition: PipelineDef, now: float, held: bool = False
) -> list[dict[str, Any]]:
    return [
        {
            "execution_id": execution_id,
            "step_id": s.id,
            "position": i,
            "action": s.action,
            "status": StepStatus.PENDING,
            "attempts": 0,
            "created_at": now,
            "ready_at": (HELD if held else now) if not s.depends_on else None,
        }
        for i, s in enumerate(definition.steps)
    ]
