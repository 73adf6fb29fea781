"""Durable waits for events: a step's ``wait_for_event`` and a pipeline's ``cancel_on``.

One mechanism serves both. A wait is a row in the store per event type it waits for
(``waits``: id, event type, kind, execution, step, the rendered filter). Ingest reads the
waits of the types it stores, in the transaction that stores the events, and tests each
wait's filter against each new event in order: so an event stored after a wait is never
missed, and nothing is read for event types nobody waits for beyond one indexed lookup.

- kind ``step``: the step was parked (status ``waiting``, no worker slot) by an action that
  raised ``Wait(until, events=...)``. A match wakes it at once with the event in its state;
  otherwise the timer at ``until`` wakes it and the action sees no event (its timeout).
- kind ``cancel``: stored when the execution starts running, from the pipeline's
  ``cancel_on`` rendered with the triggering event; a match cancels the execution.

An execution's waits are dropped when it ends (finished, failed, cancelled, timed out).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from bud.engine import scheduler
from bud.errors import FilterError, ValidationError
from bud.filters import compile_filter
from bud.pipelines import PipelineDef
from bud.render_limits import RenderLimits
from bud.store import Session
from bud.store.records import ExecutionRecord, ExecutionStatus, Row
from bud.templates import build_context, render_value_async

log = logging.getLogger("bud.engine")

STEP = "step"
CANCEL = "cancel"


def step_waits(
    execution_id: str, step_id: str, wait_id: str, events: Sequence[dict[str, Any]], now: float
) -> list[Row]:
    """The rows of one step's wait for any of ``events`` (``{event_type, filter}``)."""
    return [
        {
            "id": wait_id,
            "event_type": e["event_type"],
            "kind": STEP,
            "execution_id": execution_id,
            "step_id": step_id,
            "filter": e.get("filter") or {},
            "created_at": now,
        }
        for e in events
    ]


async def cancel_waits(
    execution: ExecutionRecord,
    definition: PipelineDef,
    pipeline_name: str | None,
    now: float,
    limits: RenderLimits,
) -> list[Row]:
    """The ``cancel_on`` waits of an execution that starts, filters rendered with its event.

    A filter that does not render or compile raises (TemplateError, FilterError): the step
    that starts the execution fails with the path.
    """
    context = build_context(
        event=execution.get("event"),
        pipeline={
            "id": execution["pipeline_id"],
            "version": execution["pipeline_version"],
            "name": pipeline_name,
        },
        execution={
            "id": execution["id"],
            "trigger_id": execution.get("trigger_id"),
            "event_id": execution.get("event_id"),
            "origin": execution.get("origin"),
        },
        params={**definition.parameters, **(execution.get("params") or {})},
    )
    rows: list[Row] = []
    for i, entry in enumerate(definition.cancel_on):
        where = f"definition.cancel_on[{i}].filter"
        rendered = await render_value_async(entry.filter, context, where=where, limits=limits)
        try:
            compile_filter(rendered)
        except FilterError as exc:
            raise ValidationError(f"{where}: {exc.message}", details={"path": where}) from exc
        rows.append(
            {
                "id": f"{execution['id']}:cancel_on[{i}]",
                "event_type": entry.event_type,
                "kind": CANCEL,
                "execution_id": execution["id"],
                "step_id": None,
                "filter": rendered,
                "created_at": now,
            }
        )
    return rows


async def on_events(session: Session, envelopes: Sequence[dict[str, Any]], now: float) -> list[str]:
    """Match newly stored events against the stored waits, in this transaction.

    Wakes the steps whose wait matched (the event in their state) and cancels the executions
    whose ``cancel_on`` matched; returns the executions cancelled. Each wait takes the first
    event that matches it, in the order given.
    """
    live = [e for e in envelopes if not e.get("test")]
    if not live:
        return []
    rows = await session.waits_for({e["event_type"] for e in live})
    if not rows:
        return []
    by_type: dict[str, list[Row]] = {}
    for row in rows:
        by_type.setdefault(row["event_type"], []).append(row)
    # Decide first, then write: the executions are held in id order (as completions hold
    # them), so two processes ingesting at once never wait on each other in a cycle.
    taken: set[str] = set()
    matches: list[tuple[Row, dict[str, Any]]] = []
    for env in live:
        for row in by_type.get(env["event_type"], ()):
            if row["id"] in taken:
                continue
            if row["kind"] == CANCEL and row["execution_id"] == env.get("causation_id"):
                continue  # an event the execution itself caused never cancels it
            try:
                matched = compile_filter(row["filter"]).matches(env)
            except FilterError:
                matched = False
            if matched:
                taken.add(row["id"])
                matches.append((row, env))
    for execution_id in sorted({row["execution_id"] for row, _env in matches}):
        await session.hold_execution(execution_id)
    cancelled: list[str] = []
    for row, env in matches:
        execution_id = row["execution_id"]
        if execution_id in cancelled:
            continue
        if row["kind"] == CANCEL:
            changed = await scheduler.close_execution(
                session,
                execution_id,
                ExecutionStatus.CANCELLED,
                f"cancelled by event {env['event_id']} ({env['event_type']}), "
                "which matched cancel_on",
                now,
            )
            if changed:
                cancelled.append(execution_id)
            continue
        state = {"wait_id": row["id"], "event": _event_view(env)}
        if await session.wake_step((execution_id, row["step_id"]), now, state):
            session.wake_workers()
        await session.drop_waits(execution_id, {row["id"]})
    return cancelled


def _event_view(env: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "event_id",
        "event_type",
        "source",
        "timestamp",
        "data",
        "correlation_id",
        "causation_id",
        "depth",
    )
    return {k: env.get(k) for k in keys}
