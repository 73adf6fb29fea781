"""Fan-out: one run of a step per item of a list (``for_each``).

Each item is a step row of its own, ``<step>[<index>]`` (``deploy[0]``, ``deploy[1]``...),
claimed, leased, retried and attempt-recorded like any step, so items survive restarts and
run on any worker. The step itself (the parent) coordinates:

1. Claimed, it renders ``for_each`` (a list, or the step fails naming the template), stores
   the items' rows in the transaction that parks it (status ``waiting``, no worker slot, the
   items in its state) and makes the first ``max_parallel`` of them ready.
2. Each item that ends makes the next one ready (``item_done``), inside its completion
   transaction, which holds the execution: the bound holds across workers. With
   ``on_item_failure: stop`` a failed item cancels the items not started yet.
3. When every item is final the parent is woken; it gathers the items' outputs in item order
   (``{"items": [...], "count": n, "failed": k}``) and succeeds, or fails if any item failed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from bud.actions.base import ActionError, Wait
from bud.pipelines import MAX_ITEMS, PipelineDef, StepDef
from bud.render_limits import RenderLimits
from bud.store import Session
from bud.store.records import FINAL_STEP, WAIT_KEY, StepRecord, StepStatus
from bud.templates import TemplateError, render_value_async, scoped

NEVER = 9e17  # a parent's timer: it is woken by its items, not by time
_ITEM_RE = re.compile(r"^(?P<step>.+)\[(?P<index>\d+)\]$")
DONE = (StepStatus.SUCCEEDED, StepStatus.SKIPPED)


def item_id(step_id: str, index: int) -> str:
    return f"{step_id}[{index}]"


def is_item(step_id: str) -> bool:
    """Step ids cannot hold brackets: only an item's id ends with one."""
    return step_id.endswith("]")


def split(step_id: str) -> tuple[str, int | None]:
    """``deploy[3]`` -> ``("deploy", 3)``; a step's own id -> ``(id, None)``."""
    match = _ITEM_RE.match(step_id)
    if match is None:
        return step_id, None
    return match.group("step"), int(match.group("index"))


def items_of(step_id: str, rows: Sequence[StepRecord]) -> list[StepRecord]:
    """The item rows of a step, in item order."""
    found = []
    for r in rows:
        parent, index = split(r["step_id"])
        if index is not None and parent == step_id:
            found.append((index, r))
    return [r for _, r in sorted(found, key=lambda p: p[0])]


def _state(row: StepRecord | None) -> dict[str, Any]:
    outputs = (row or {}).get("outputs")
    if isinstance(outputs, Mapping) and isinstance(outputs.get(WAIT_KEY), Mapping):
        return dict(outputs[WAIT_KEY])
    return {}


def item_context(
    context: dict[str, Any], step_rows: Sequence[StepRecord], step_id: str, index: int
) -> None:
    """Add ``item`` and ``index`` to an item's template context (from its parent's state)."""
    parent = next((r for r in step_rows if r["step_id"] == step_id), None)
    items = _state(parent).get("items")
    if not isinstance(items, list) or index >= len(items):
        raise ActionError(
            f"item {index} of step {step_id} has no value: the step is not fanning out",
            retryable=False,
        )
    context["item"] = scoped("item", items[index])
    context["index"] = index


class Spawn(Wait):
    """Park the parent until its items are done; store and start the items given."""

    def __init__(
        self,
        state: dict[str, Any],
        rows: list[StepRecord] | None = None,
        ready: list[str] | None = None,
        reset: list[str] | None = None,
    ) -> None:
        super().__init__(NEVER, state)
        self.rows = rows or []
        self.ready = ready or []
        self.reset = reset or []


async def run_parent(
    step: StepDef,
    execution_id: str,
    position: int,
    max_attempts: int | None,
    context: Mapping[str, Any],
    state: Mapping[str, Any],
    step_rows: Sequence[StepRecord],
    now: float,
    limits: RenderLimits,
) -> dict[str, Any]:
    """Run a ``for_each`` step: fan out (raises Spawn), or gather its finished items."""
    where = f"steps.{step.id}.for_each"
    existing = items_of(step.id, step_rows)
    if isinstance(state.get("items"), list):  # woken: its items are done
        count = len(state["items"])
        children = existing[:count]
        if len(children) < count or any(c["status"] not in FINAL_STEP for c in children):
            raise Spawn(dict(state))  # not yet: back to waiting
        return gather(step, children)
    items = await render_value_async(step.for_each, context, where=where, limits=limits)
    if not isinstance(items, list):
        source = step.for_each if isinstance(step.for_each, str) else "the for_each value"
        raise TemplateError(
            f"{where}: must yield a list, but {source!r} gave {_json_type(items)}",
            details={"path": where},
        )
    if len(items) > MAX_ITEMS:
        raise TemplateError(
            f"{where}: yields {len(items)} items; the limit is {MAX_ITEMS}",
            details={"path": where},
        )
    by_id = {r["step_id"]: r for r in existing}
    rows: list[StepRecord] = []
    todo: list[str] = []
    reset: list[str] = []
    for index in range(len(items)):
        sid = item_id(step.id, index)
        row = by_id.get(sid)
        if row is None:
            rows.append(
                {
                    "execution_id": execution_id,
                    "step_id": sid,
                    "position": position,
                    "action": step.action,
                    "status": StepStatus.PENDING,
                    "attempts": 0,
                    "attempt_base": 0,
                    "max_attempts": max_attempts,
                    "created_at": now,
                    "ready_at": None,
                }
            )
        elif row["status"] in DONE:
            continue  # a retried execution keeps the items that succeeded
        elif row["status"] in FINAL_STEP:
            reset.append(sid)
        todo.append(sid)
    if not todo:
        return gather(step, [by_id[item_id(step.id, i)] for i in range(len(items))])
    ready = todo[: step.max_parallel or len(todo)]
    raise Spawn({"items": items}, rows, ready, reset)


async def spawn(session: Session, execution_id: str, wait: Spawn, now: float) -> bool:
    """Store a parent's items and make the first ones ready (in the parking transaction)."""
    await session.add_steps(wait.rows)
    if wait.reset:
        await session.reset_steps(execution_id, wait.reset)
    made = False
    for sid in wait.ready:
        made = await session.mark_ready(execution_id, sid, now) or made
    return made


def gather(step: StepDef, children: Sequence[StepRecord]) -> dict[str, Any]:
    """The parent's outputs from its finished items, in item order; fail if any failed."""
    outputs = []
    for c in children:
        out = c.get("outputs") or {}
        outputs.append({} if WAIT_KEY in out else out)
    failed = [(i, c) for i, c in enumerate(children) if c["status"] == StepStatus.FAILED]
    result = {"items": outputs, "count": len(children), "failed": len(failed)}
    if failed:
        index, first = failed[0]
        message = f"{len(failed)} of {len(children)} items failed; item {index}: {first['error']}"
        not_started = sum(1 for c in children if c["status"] == StepStatus.CANCELLED)
        if not_started:
            message += f"; {not_started} not started (on_item_failure: {step.on_item_failure})"
        raise ActionError(message, retryable=False, outputs=result)
    return result


async def item_done(
    session: Session, execution_id: str, item_step_id: str, definition: PipelineDef, now: float
) -> tuple[list[str], list[StepRecord]]:
    """An item ended for good: start the next, or stop; wake the parent when all are done.

    Returns the step ids made ready (items, or the parent) and the steps as read.
    """
    rows = await session.steps_of(execution_id)
    parent_id, _ = split(item_step_id)
    parent = next((r for r in rows if r["step_id"] == parent_id), None)
    if parent is None or parent["status"] != StepStatus.WAITING:
        return [], rows
    step = definition.step(parent_id)
    count = len(_state(parent).get("items") or [])
    children = items_of(parent_id, rows)[:count]
    ready: list[str] = []
    if step.on_item_failure == "stop" and any(c["status"] == StepStatus.FAILED for c in children):
        unstarted = [
            c
            for c in children
            if c["status"] == StepStatus.PENDING
            and int(c["attempts"] or 0) == int(c.get("attempt_base") or 0)
        ]
        await session.cancel_steps(execution_id, [c["step_id"] for c in unstarted], now)
        for c in unstarted:
            c["status"] = StepStatus.CANCELLED
    else:
        busy = sum(
            1
            for c in children
            if c["status"] in (StepStatus.RUNNING, StepStatus.WAITING)
            or (c["status"] == StepStatus.PENDING and c["ready_at"] is not None)
        )
        cap = step.max_parallel or len(children)
        for c in children:
            if busy >= cap:
                break
            if (
                c["status"] == StepStatus.PENDING
                and c["ready_at"] is None
                and await session.mark_ready(execution_id, c["step_id"], now)
            ):
                c["ready_at"] = now
                ready.append(c["step_id"])
                busy += 1
    if all(c["status"] in FINAL_STEP for c in children) and await session.wake_step(
        (execution_id, parent_id), now, None
    ):
        ready.append(parent_id)
    return ready, rows


def item_views(step_id: str, rows: Sequence[StepRecord]) -> list[dict[str, Any]]:
    """The items of a step as the API shows them."""
    views = []
    for r in items_of(step_id, rows):
        _, index = split(r["step_id"])
        outputs = r.get("outputs") or {}
        views.append(
            {
                "index": index,
                "step_id": r["step_id"],
                "status": r["status"],
                "attempts": r.get("attempts") or 0,
                "outputs": {} if WAIT_KEY in outputs else outputs,
                "error": r.get("error"),
                "started_at": r.get("started_at"),
                "finished_at": r.get("finished_at"),
            }
        )
    return views


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return f"a string ({value[:60]!r})"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
