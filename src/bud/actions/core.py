"""General-purpose actions: log, delay, set_output, fail, run_pipeline."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bud.actions.base import ActionContext, ActionError, RetryPolicy, Wait, action

DURABLE_DELAY_SECONDS = 5.0  # default: a delay this long or longer gives its slot back

LEVELS = ["debug", "info", "warning", "error", "critical"]


@action(
    "log",
    description="Write a message to the execution's log.",
    params={
        "type": "object",
        "required": ["message"],
        "properties": {
            "message": {"type": "string"},
            "level": {"type": "string", "enum": LEVELS},
        },
        "additionalProperties": False,
    },
    outputs={"message": "the logged message", "level": "the level used"},
    timeout_seconds=10,
)
async def log_action(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    level = params.get("level", "info")
    ctx.log(params["message"], level)
    return {"message": params["message"], "level": level}


@action(
    "delay",
    description="Wait a number of seconds.",
    params={
        "type": "object",
        "required": ["seconds"],
        "properties": {"seconds": {"type": "number", "minimum": 0, "maximum": 86400}},
        "additionalProperties": False,
    },
    outputs={"seconds": "how long it waited"},
    timeout_seconds=86400,
)
async def delay_action(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Short delays sleep in their slot; from ``DURABLE_DELAY_SECONDS`` on, the step waits on a
    durable timer and holds no slot (a restart or another worker resumes it on time)."""
    seconds = float(params["seconds"])
    now = time.time()
    wake = float(ctx.state.get("wake_at") or now + seconds)
    durable = getattr(ctx.settings, "durable_delay_seconds", DURABLE_DELAY_SECONDS)
    if wake - now >= durable:
        raise Wait(wake, {"wake_at": wake})
    if wake > now:
        await asyncio.sleep(wake - now)
    return {"seconds": params["seconds"]}


@action(
    "set_output",
    description="Set outputs from params, for later steps to read as steps.<id>.outputs.<key>.",
    params={"type": "object"},
    outputs={"*": "every param, as given after rendering"},
    timeout_seconds=10,
)
async def set_output_action(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    return dict(params)


@action(
    "fail",
    description="Fail the step with a message (for tests and guards).",
    params={
        "type": "object",
        "properties": {"message": {"type": "string"}, "retryable": {"type": "boolean"}},
        "additionalProperties": False,
    },
    timeout_seconds=10,
)
async def fail_action(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    raise ActionError(
        params.get("message", "failed by the fail action"),
        retryable=bool(params.get("retryable", True)),
    )


@action(
    "run_pipeline",
    description="Start another pipeline as a child execution and wait for it to finish.",
    params={
        "type": "object",
        "required": ["pipeline_id"],
        "properties": {
            "pipeline_id": {"type": "string"},
            "params": {"type": "object"},
            "wait": {"type": "boolean"},
        },
        "additionalProperties": False,
    },
    outputs={
        "execution_id": "the child execution",
        "status": "its final status",
        "outputs": "the child's step outputs",
    },
    timeout_seconds=3600,
    retry=RetryPolicy(max_attempts=1),
)
async def run_pipeline_action(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    if ctx.run_pipeline is None:
        raise ActionError("run_pipeline is not available in this context", retryable=False)
    return await ctx.run_pipeline(
        params["pipeline_id"],
        params.get("params") or {},
        wait=params.get("wait", True),
        key=ctx.idempotency_key,
    )
