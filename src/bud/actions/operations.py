"""Actions for the product document's use cases: list deployments and waiting models, update a
deployment and roll it back, diagnose a cluster, configure monitoring (docs/examples.md)."""

from __future__ import annotations

from typing import Any

from bud.actions.base import ActionContext, ActionError, action
from bud.errors import ConflictError, NotFoundError, ValidationError
from bud.platform.base import DEPLOYMENT_STATUSES
from bud.timeutil import to_iso

DEFAULT_METRICS = ("latency_p99_ms", "error_rate", "requests_per_second")


def _platform(ctx: ActionContext) -> Any:
    if ctx.platform is None:
        raise ActionError("no platform is configured for this server", retryable=False)
    return ctx.platform


_LIMIT = {"type": "integer", "minimum": 1, "maximum": 1000}


def _deployment_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "deployment_id": row["id"],
        "deployment_name": row["name"],
        "model_id": row["model_id"],
        "cluster_id": row["cluster_id"],
        "status": row["status"],
        "error_message": row.get("error_message"),
    }


async def _call(what: str, coro: Any) -> Any:
    """Run a platform call; what the platform refuses fails the step for good."""
    try:
        return await coro
    except (NotFoundError, ConflictError, ValidationError) as exc:
        raise ActionError(f"{what}: {exc.message}", retryable=False) from exc


@action(
    "deployment_list",
    description="List deployments, of a model, on a cluster and/or in a status (running, "
    "failed, ...); the list drives a for_each step.",
    params={
        "type": "object",
        "properties": {
            "model_id": {"type": "string", "minLength": 1},
            "cluster_id": {"type": "string", "minLength": 1},
            "status": {"enum": list(DEPLOYMENT_STATUSES)},
            "limit": _LIMIT,
        },
        "additionalProperties": False,
    },
    outputs={
        "deployments": "the deployments (deployment_id, deployment_name, model_id, cluster_id, "
        "status, error_message), oldest first",
        "deployment_ids": "their ids",
        "count": "how many",
    },
    timeout_seconds=30,
)
async def deployment_list_action(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    where = {k: params[k] for k in ("model_id", "cluster_id", "status") if params.get(k)}
    rows = await _platform(ctx).list_records("deployments", where, params.get("limit", 100), None)
    rows = sorted(rows, key=lambda r: (r["created_at"], r["id"]))
    items = [_deployment_out(r) for r in rows]
    return {
        "deployments": items,
        "deployment_ids": [d["deployment_id"] for d in items],
        "count": len(items),
    }


@action(
    "model_list_waiting",
    description="List the models waiting for a cluster: their metadata names it as "
    "target_cluster and they have no pending or running deployment on it.",
    params={
        "type": "object",
        "required": ["cluster_id"],
        "properties": {"cluster_id": {"type": "string", "minLength": 1}},
        "additionalProperties": False,
    },
    outputs={
        "models": "the waiting models (model_id, model_name, model_source, metadata), oldest first",
        "model_ids": "their ids",
        "count": "how many",
    },
    timeout_seconds=30,
)
async def model_list_waiting_action(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    rows = await _call(
        "model_list_waiting", _platform(ctx).models_waiting_for(params["cluster_id"])
    )
    models = [
        {
            "model_id": m["id"],
            "model_name": m["name"],
            "model_source": m["source"],
            "metadata": m.get("metadata") or {},
        }
        for m in rows
    ]
    return {"models": models, "model_ids": [m["model_id"] for m in models], "count": len(models)}


@action(
    "deployment_update",
    description="Move a deployment to a new model version and/or config (merged over the "
    "current one): a new revision, the previous one kept for a rollback. Nothing changes when "
    "both are what it runs already. Fails when the cluster is not ready.",
    params={
        "type": "object",
        "required": ["deployment_id"],
        "properties": {
            "deployment_id": {"type": "string", "minLength": 1},
            "model_version": {"type": "string", "minLength": 1, "maxLength": 128},
            "config": {"type": "object"},
        },
        "anyOf": [{"required": ["model_version"]}, {"required": ["config"]}],
        "additionalProperties": False,
    },
    outputs={
        "deployment_id": "the deployment",
        "deployment_name": "its name",
        "revision": "the revision it runs now",
        "previous_revision": "the revision it ran before",
        "model_version": "the model version it runs now",
        "previous_model_version": "the model version it ran before",
        "config": "its config now",
        "changed": "false when it ran this already",
        "status": "running",
    },
    timeout_seconds=120,
)
async def deployment_update_action(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    deployment_id = params["deployment_id"]
    done = await _call(
        "deployment_update",
        _platform(ctx).revise_deployment(
            deployment_id,
            model_version=params.get("model_version"),
            config=params.get("config"),
            # one key per deployment: a fanned-out step updates many with one step id
            idempotency_key=f"{ctx.idempotency_key}:update:{deployment_id}",
        ),
    )
    row, rev, before = done["deployment"], done["revision"], done["previous"]
    return {
        "deployment_id": row["id"],
        "deployment_name": row["name"],
        "revision": rev["revision"],
        "previous_revision": before["revision"] if before else None,
        "model_version": rev["model_version"],
        "previous_model_version": before["model_version"] if before else None,
        "config": rev["config"],
        "changed": done["changed"],
        "status": row["status"],
    }


@action(
    "deployment_rollback",
    description="Roll a deployment back to its last good revision before the current one (or "
    "to_revision): a new revision with that model version and config. With missing_ok, a "
    "deployment that is gone or has no earlier good revision answers rolled_back false "
    "instead of failing.",
    params={
        "type": "object",
        "required": ["deployment_id"],
        "properties": {
            "deployment_id": {"type": "string", "minLength": 1},
            "to_revision": {"type": "integer", "minimum": 1},
            "missing_ok": {"type": "boolean"},
        },
        "additionalProperties": False,
    },
    outputs={
        "deployment_id": "the deployment",
        "deployment_name": "its name",
        "rolled_back": "whether it was rolled back",
        "revision": "the revision it runs now",
        "from_revision": "the revision it ran before",
        "to_revision": "the good revision it went back to",
        "model_version": "the model version it runs now",
        "status": "its status",
    },
    timeout_seconds=120,
)
async def deployment_rollback_action(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    deployment_id = params["deployment_id"]
    platform = _platform(ctx)
    missing_ok = params.get("missing_ok", False)
    out: dict[str, Any] = {
        "deployment_id": deployment_id,
        "deployment_name": None,
        "rolled_back": False,
        "revision": None,
        "from_revision": None,
        "to_revision": None,
        "model_version": None,
        "status": None,
    }
    try:
        done = await platform.rollback_deployment(
            deployment_id,
            to_revision=params.get("to_revision"),
            idempotency_key=f"{ctx.idempotency_key}:rollback:{deployment_id}",
        )
        row = done["deployment"] if done else await platform.get_deployment(deployment_id)
    except NotFoundError as exc:
        if not missing_ok:
            raise ActionError(f"deployment_rollback: {exc.message}", retryable=False) from exc
        ctx.log(f"{exc.message}: nothing to roll back", level="warning")
        return out
    except (ConflictError, ValidationError) as exc:
        raise ActionError(f"deployment_rollback: {exc.message}", retryable=False) from exc
    if done is None:
        out.update(deployment_name=row["name"], status=row["status"])
        message = f"deployment {row['name']} has no earlier good revision to roll back to"
        if not missing_ok:
            raise ActionError(message, retryable=False, outputs=out)
        ctx.log(message, level="warning")
        return out
    row, rev = done["deployment"], done["revision"]
    ctx.log(
        f"rolled back {row['name']} from revision {done['previous']['revision']} to the good "
        f"revision {done['target']['revision']} (now revision {rev['revision']})"
    )
    return {
        "deployment_id": row["id"],
        "deployment_name": row["name"],
        "rolled_back": True,
        "revision": rev["revision"],
        "from_revision": done["previous"]["revision"],
        "to_revision": done["target"]["revision"],
        "model_version": rev["model_version"],
        "status": row["status"],
    }


@action(
    "cluster_diagnostics",
    description="Gather a cluster's state: its status and reason, the deployments on it and "
    "its recent health results, with a one-paragraph summary. Does not fail on a sick "
    "cluster (that is what it is for).",
    params={
        "type": "object",
        "required": ["cluster_id"],
        "properties": {
            "cluster_id": {"type": "string", "minLength": 1},
            "checks": {"type": "integer", "minimum": 1, "maximum": 50},
        },
        "additionalProperties": False,
    },
    outputs={
        "cluster_id": "the cluster",
        "cluster_name": "its name",
        "environment": "its environment label",
        "status": "its health state",
        "reason": "why it is in that state",
        "healthy": "whether it is ready",
        "deployments": "the deployments on it (deployment_id, deployment_name, model_id, "
        "status, error_message)",
        "deployment_count": "how many",
        "failed_deployments": "the ids of the failed ones",
        "checks": "its recent health results, newest first (status, previous_status, reason, "
        "source, at)",
        "summary": "all of it in a few sentences, for a notification",
    },
    timeout_seconds=30,
)
async def cluster_diagnostics_action(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    found = await _call(
        "cluster_diagnostics",
        _platform(ctx).diagnose_cluster(params["cluster_id"], params.get("checks", 10)),
    )
    cluster = found["cluster"]
    deployments = [_deployment_out(d) for d in found["deployments"]]
    checks = [
        {
            "status": c["status"],
            "previous_status": c["previous_status"],
            "reason": c["reason"],
            "source": c["source"],
            "at": to_iso(c["created_at"]),
        }
        for c in found["checks"]
    ]
    failed = [d for d in deployments if d["status"] == "failed"]
    return {
        "cluster_id": cluster["id"],
        "cluster_name": cluster["name"],
        "environment": cluster["environment"],
        "status": cluster["status"],
        "reason": cluster.get("reason"),
        "healthy": cluster["status"] == "ready",
        "deployments": deployments,
        "deployment_count": len(deployments),
        "failed_deployments": [d["deployment_id"] for d in failed],
        "checks": checks,
        "summary": _summary(cluster, deployments, checks),
    }


def _summary(
    cluster: dict[str, Any], deployments: list[dict[str, Any]], checks: list[dict[str, Any]]
) -> str:
    where = ", ".join(x for x in (cluster["name"], cluster["environment"]) if x)
    reason = f": {cluster['reason']}" if cluster.get("reason") else ""
    parts = [f"Cluster {cluster['id']} ({where}) is {cluster['status']}{reason}."]
    counts: dict[str, int] = {}
    for d in deployments:
        counts[d["status"]] = counts.get(d["status"], 0) + 1
    if deployments:
        by_status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        parts.append(f"{len(deployments)} deployment(s) on it: {by_status}.")
        failed = [
            f"{d['deployment_name']} ({d['error_message']})"
            for d in deployments
            if d["status"] == "failed"
        ]
        if failed:
            parts.append(f"Failed: {'; '.join(failed)}.")
    else:
        parts.append("No deployments on it.")
    if checks:
        recent = "; ".join(
            f"{c['at']} {c['previous_status'] or 'new'} → {c['status']} "
            f"({c['source']}: {c['reason']})"
            for c in checks[:3]
        )
        parts.append(f"Recent health changes: {recent}.")
    return " ".join(parts)


@action(
    "monitoring_configure",
    description="Configure monitoring of a deployment: the metrics to collect, alert rules "
    "and the channel alerts go to. Recorded as the deployment's monitor (configuring again "
    "replaces it), readable at /v1/monitors.",
    params={
        "type": "object",
        "required": ["deployment_id"],
        "properties": {
            "deployment_id": {"type": "string", "minLength": 1},
            "metrics": {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": 128},
                "minItems": 1,
                "uniqueItems": True,
            },
            "alerts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["metric"],
                    "properties": {
                        "metric": {"type": "string", "minLength": 1},
                        "above": {"type": "number"},
                        "below": {"type": "number"},
                        "for_seconds": {"type": "integer", "minimum": 0},
                    },
                    "anyOf": [{"required": ["above"]}, {"required": ["below"]}],
                    "additionalProperties": False,
                },
            },
            "channel": {"type": "string", "minLength": 1, "maxLength": 32},
            "interval_seconds": {"type": "integer", "minimum": 5, "maximum": 3600},
        },
        "additionalProperties": False,
    },
    outputs={
        "monitor_id": "the deployment's monitor",
        "deployment_id": "the deployment",
        "cluster_id": "its cluster",
        "environment": "its environment",
        "metrics": "the metrics collected",
        "alerts": "the alert rules",
        "channel": "where alerts go",
        "interval_seconds": "how often metrics are collected",
        "created": "false when it replaced an earlier configuration",
    },
    timeout_seconds=60,
)
async def monitoring_configure_action(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    metrics = list(params.get("metrics") or DEFAULT_METRICS)
    alerts = [dict(a) for a in params.get("alerts") or []]
    for i, rule in enumerate(alerts):
        if rule["metric"] not in metrics:
            raise ActionError(
                f"alerts[{i}].metric: {rule['metric']!r} is not collected; metrics are "
                f"{', '.join(metrics)}",
                retryable=False,
            )
    config = {
        "metrics": metrics,
        "alerts": alerts,
        "channel": params.get("channel"),
        "interval_seconds": params.get("interval_seconds", 60),
    }
    monitor, created = await _call(
        "monitoring_configure",
        _platform(ctx).configure_monitoring(
            params["deployment_id"], config, configured_by=ctx.execution_id
        ),
    )
    return {
        "monitor_id": monitor["id"],
        "deployment_id": monitor["deployment_id"],
        "cluster_id": monitor["cluster_id"],
        "environment": monitor["environment"],
        **config,
        "created": created,
    }


OPERATION_ACTIONS = [
    deployment_list_action,
    model_list_waiting_action,
    deployment_update_action,
    deployment_rollback_action,
    cluster_diagnostics_action,
    monitoring_configure_action,
]
