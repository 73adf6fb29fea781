"""Durable waits for a later event: ``wait_for_event``.

The step parks (status ``waiting``, no worker slot) until an event of ``event_type`` that
matches ``filter`` is stored, or ``timeout_seconds`` pass. Its params render first, so the
filter may read the triggering event and earlier steps' outputs. See ``bud.engine.waits``.
"""

from __future__ import annotations

import time
from typing import Any

from bud.actions.base import ActionContext, ActionError, Wait, action
from bud.errors import FilterError
from bud.filters import compile_filter

MAX_WAIT_SECONDS = 30 * 86400
DEFAULT_WAIT_SECONDS = 86400


def now_of(ctx: ActionContext) -> float:
    """The engine's clock (a manual one in tests), or the system's."""
    clock = getattr(ctx, "clock", None)
    return float(clock.now()) if clock is not None else time.time()


def event_wait(
    ctx: ActionContext, events: list[dict[str, Any]], timeout: float, state: dict[str, Any]
) -> Wait:
    """The Wait that parks a step until one of ``events`` matches, or ``timeout`` passes."""
    for i, e in enumerate(events):
        try:
            compile_filter(e.get("filter") or {})
        except FilterError as exc:
            raise ActionError(
                f"steps.{ctx.step_id}.params.filter: {exc.message}"
                if len(events) == 1
                else f"wait {i}: {exc.message}",
                retryable=False,
            ) from exc
    until = float(state.get("until") or now_of(ctx) + timeout)
    return Wait(until, {**state, "until": until}, events=events)


@action(
    "wait_for_event",
    description="Wait (holding no worker slot, across restarts) for a later event of a type "
    "whose data matches a filter; on timeout, fail or continue with timed_out: true.",
    params={
        "type": "object",
        "required": ["event_type"],
        "properties": {
            "event_type": {"type": "string", "minLength": 1},
            "filter": {"type": "object"},
            "timeout_seconds": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": MAX_WAIT_SECONDS,
            },
            "on_timeout": {"type": "string", "enum": ["fail", "continue"]},
        },
        "additionalProperties": False,
    },
    outputs={
        "event": "the matched event (event_id, event_type, source, timestamp, data, ...); "
        "null on a timeout",
        "timed_out": "true when no event matched in time (with on_timeout: continue)",
    },
    timeout_seconds=60,
)
async def wait_for_event_action(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    event = ctx.state.get("event")
    if isinstance(event, dict):
        ctx.log(f"matched event {event.get('event_id')} ({event.get('event_type')})")
        return {"event": event, "timed_out": False}
    timeout = float(params.get("timeout_seconds") or DEFAULT_WAIT_SECONDS)
    until = ctx.state.get("until")
    if until is not None and now_of(ctx) >= float(until):
        message = f"no {params['event_type']} event matched within {timeout:g}s"
        if params.get("on_timeout", "fail") == "continue":
            ctx.log(f"{message}: continuing (on_timeout: continue)")
            return {"event": None, "timed_out": True}
        raise ActionError(f"timed out: {message}", retryable=False, outputs={"timed_out": True})
    events = [{"event_type": params["event_type"], "filter": params.get("filter") or {}}]
    raise event_wait(ctx, events, timeout, dict(ctx.state))
