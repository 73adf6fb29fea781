"""Actions on the platform: cluster_health, deployment_create, deployment_delete."""

from __future__ import annotations

from typing import Any

from bud.actions.base import ActionContext, ActionError, RetryPolicy, action
from bud.actions.waiting import MAX_WAIT_SECONDS, event_wait, now_of
from bud.errors import NotFoundError

DEPLOY_WAIT_SECONDS = 1800.0  # wait: true gives up after this long by default


def _platform(ctx: ActionContext) -> Any:
    if ctx.platform is None:
        raise ActionError("no platform is configured for this server", retryable=False)
    return ctx.platform


def _cause(ctx: ActionContext) -> dict[str, Any]:
    event = ctx.event or {}
    return {
        "correlation_id": event.get("correlation_id") or event.get("event_id"),
        "causation_id": ctx.execution_id,
        "depth": int(event.get("depth") or 0) + 1,
    }


@action(
    "cluster_health",
    description="Check that a cluster is healthy; fails the step when it is not, so nothing "
    "deploys to a sick cluster.",
    params={
        "type": "object",
        "required": ["cluster_id"],
        "properties": {"cluster_id": {"type": "string", "minLength": 1}},
        "additionalProperties": False,
    },
    outputs={
        "cluster_id": "the cluster",
        "status": "its health state",
        "healthy": "true",
        "environment": "its environment label",
    },
    timeout_seconds=30,
    retry=RetryPolicy(max_attempts=1),
)
async def cluster_health_action(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    try:
        cluster = await _platform(ctx).get_cluster(params["cluster_id"])
    except NotFoundError as exc:
        raise ActionError(f"cluster {params['cluster_id']} not found", retryable=False) from exc
    out = {
        "cluster_id": cluster["id"],
        "status": cluster["status"],
        "healthy": cluster["status"] == "ready",
        "environment": cluster["environment"],
    }
    if cluster["status"] != "ready":
        raise ActionError(
            f"cluster {cluster['id']} is {cluster['status']}: {cluster.get('reason')}",
            retryable=False,
            outputs=out,
        )
    return out


@action(
    "deployment_create",
    description="Deploy a model to a cluster. Emits deployment.created, or deployment.failed "
    "(and fails the step) when it cannot be placed.",
    params={
        "type": "object",
        "required": ["model_id", "cluster_id", "deployment_name"],
        "properties": {
            "model_id": {"type": "string", "minLength": 1},
            "cluster_id": {"type": "string", "minLength": 1},
            "deployment_name": {"type": "string", "minLength": 1},
            "wait": {"type": "boolean"},
            "wait_timeout_seconds": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": MAX_WAIT_SECONDS,
            },
        },
        "additionalProperties": False,
    },
    outputs={
        "deployment_id": "the new deployment",
        "deployment_name": "its name",
        "status": "running or failed (pending without wait when the platform is still placing it)",
    },
    timeout_seconds=120,
    retry=RetryPolicy(max_attempts=1),
    idempotent=True,
)
async def deployment_create_action(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """With ``wait: true`` a pending deployment parks the step (no worker slot, durable) until
    ``deployment.ready`` or ``deployment.failed`` of that deployment, or the timeout."""
    if params.get("wait") and ctx.state:
        return await _deployment_waited(ctx, params)
    row = await _platform(ctx).create_deployment(
        params["model_id"],
        params["cluster_id"],
        params["deployment_name"],
        idempotency_key=ctx.idempotency_key,
        cause=_cause(ctx),
    )
    out = {"deployment_id": row["id"], "deployment_name": row["name"], "status": row["status"]}
    if row["status"] == "failed":
        raise ActionError(
            f"deployment {row['name']} failed: {row['error_message']}", retryable=False, outputs=out
        )
    if params.get("wait") and row["status"] == "pending":
        ctx.log(f"deployment {row['id']} is pending: waiting until it is ready or failed")
        events = _events_of(row["id"])
        timeout = float(params.get("wait_timeout_seconds") or DEPLOY_WAIT_SECONDS)
        raise event_wait(ctx, events, timeout, {"deployment": out})
    return out


async def _deployment_waited(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Back from the wait of ``wait: true``: ready, failed, or timed out."""
    out = dict(ctx.state.get("deployment") or {})
    event = ctx.state.get("event")
    if isinstance(event, dict) and event.get("event_type") == "deployment.failed":
        error = (event.get("data") or {}).get("error_message")
        out["status"] = "failed"
        raise ActionError(
            f"deployment {out.get('deployment_name')} failed: {error}", retryable=False, outputs=out
        )
    if isinstance(event, dict):
        out["status"] = "running"
        return out
    try:  # the timer: a change may have come without its event reaching the wait
        row = await _platform(ctx).get_deployment(out["deployment_id"])
    except NotFoundError as exc:
        raise ActionError(
            f"deployment {out.get('deployment_id')} is gone", retryable=False
        ) from exc
    out["status"] = row["status"]
    if row["status"] == "running":
        return out
    if row["status"] == "pending" and now_of(ctx) < float(ctx.state.get("until") or 0):
        raise event_wait(ctx, _events_of(out["deployment_id"]), 0, dict(ctx.state))
    timeout = params.get("wait_timeout_seconds") or DEPLOY_WAIT_SECONDS
    raise ActionError(
        f"deployment {out.get('deployment_name')} is {row['status']}, not running, after "
        f"waiting {timeout:g}s",
        retryable=False,
        outputs=out,
    )


def _events_of(deployment_id: str) -> list[dict[str, Any]]:
    only = {"deployment_id": deployment_id}
    return [
        {"event_type": "deployment.ready", "filter": only},
        {"event_type": "deployment.failed", "filter": only},
    ]


@action(
    "deployment_delete",
    description="Delete a deployment (a rollback).",
    params={
        "type": "object",
        "required": ["deployment_id"],
        "properties": {
            "deployment_id": {"type": "string", "minLength": 1},
            "missing_ok": {"type": "boolean"},
        },
        "additionalProperties": False,
    },
    outputs={"deployment_id": "the deleted deployment", "deleted": "whether it existed"},
    timeout_seconds=60,
)
async def deployment_delete_action(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    try:
        await _platform(ctx).delete_deployment(params["deployment_id"], cause=_cause(ctx))
    except NotFoundError:
        if params.get("missing_ok", True):
            return {"deployment_id": params["deployment_id"], "deleted": False}
        raise ActionError(
            f"deployment {params['deployment_id']} not found", retryable=False
        ) from None
    return {"deployment_id": params["deployment_id"], "deleted": True}


@action(
    "model_add",
    description="Register a model in the platform's registry (emits model.added).",
    params={
        "type": "object",
        "required": ["name", "source"],
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "source": {"type": "string", "minLength": 1},
            "uri": {"type": "string"},
            "metadata": {"type": "object"},
        },
        "additionalProperties": False,
    },
    outputs={"model_id": "the registered model", "model_name": "its name"},
    timeout_seconds=60,
)
async def model_add_action(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    row = await _platform(ctx).add_model(
        params["name"],
        params["source"],
        params.get("uri"),
        None,
        params.get("metadata") or {},
        idempotency_key=ctx.idempotency_key,
        cause=_cause(ctx),
    )
    return {"model_id": row["id"], "model_name": row["name"]}
