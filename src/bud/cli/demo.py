"""The demo setup: the product document's two example pipelines, their triggers, a cluster.

Only the SDK is used, so the same code loads the demo into a remote server (``bud demo``)
and into the local one (``bud serve --demo``).
"""

from __future__ import annotations

import copy
from typing import Any

from bud.client import BudClient
from bud.errors import NotFoundError

__all__ = ["DEMO_CLUSTER", "DEMO_PIPELINES", "load_demo"]

DEMO_CLUSTER: dict[str, Any] = {
    "id": "cluster_prod",
    "name": "Production",
    "environment": "production",
}

# The definitions and trigger filters exactly as the product document shows them.
DEMO_PIPELINES: list[dict[str, Any]] = [
    {
        "name": "Auto-Deploy New Models",
        "description": "Deploys Hugging Face models registered with auto_deploy to cluster_prod.",
        "definition": {
            "steps": [
                {
                    "id": "health_check",
                    "action": "cluster_health",
                    "params": {"cluster_id": "cluster_prod"},
                },
                {
                    "id": "deploy",
                    "action": "deployment_create",
                    "params": {
                        "model_id": "{{ event.model_id }}",
                        "cluster_id": "cluster_prod",
                        "deployment_name": "{{ event.model_name }}-auto",
                    },
                    "depends_on": ["health_check"],
                },
                {
                    "id": "notify",
                    "action": "notification",
                    "params": {
                        "message": "Deployed {{ event.model_name }} successfully",
                        "channel": "slack",
                    },
                    "depends_on": ["deploy"],
                },
            ]
        },
        "trigger": {
            "name": "Hugging Face models marked auto_deploy",
            "event_type": "model.added",
            "filter": {"model_source": "hugging_face", "auto_deploy": True},
        },
    },
    {
        "name": "Deployment Failure Alerts",
        "description": "Logs every failed deployment and alerts Slack.",
        "definition": {
            "steps": [
                {
                    "id": "log_failure",
                    "action": "log",
                    "params": {
                        "message": "Deployment failed: {{ event.deployment_id }}",
                        "level": "error",
                    },
                },
                {
                    "id": "send_alert",
                    "action": "notification",
                    "params": {
                        "message": "🚨 Deployment {{ event.deployment_name }} failed: "
                        "{{ event.error_message }}",
                        "channel": "slack",
                        "priority": "high",
                    },
                },
            ]
        },
        "trigger": {
            "name": "Every failed deployment",
            "event_type": "deployment.failed",
            "filter": None,
        },
    },
]


def load_demo(client: BudClient) -> dict[str, Any]:
    """Create what is missing of the demo; idempotent (matches pipelines by name).

    Returns ``{"cluster": id, "pipelines": {name: id}, "triggers": {name: id},
    "created": [...], "existing": [...]}`` where the last two are human-readable lines.
    """
    created: list[str] = []
    existing: list[str] = []

    cluster_id = DEMO_CLUSTER["id"]
    try:
        client.clusters.get(cluster_id)
        existing.append(f"cluster {cluster_id}")
    except NotFoundError:
        client.clusters.create(
            DEMO_CLUSTER["name"], id=cluster_id, environment=DEMO_CLUSTER["environment"]
        )
        created.append(f"cluster {cluster_id} ({DEMO_CLUSTER['name']})")

    by_name = {p.name: p for p in client.pipelines.list()}
    pipelines: dict[str, str] = {}
    triggers: dict[str, str] = {}
    for spec in DEMO_PIPELINES:
        name = spec["name"]
        pipeline = by_name.get(name)
        if pipeline is None:
            pipeline = client.pipelines.create(
                name=name,
                definition=copy.deepcopy(spec["definition"]),
                description=spec["description"],
            )
            created.append(f"pipeline {pipeline.id} ({name})")
        else:
            existing.append(f"pipeline {pipeline.id} ({name})")
        pipelines[name] = pipeline.id

        want = spec["trigger"]
        trigger = client.event_triggers.list(
            pipeline_id=pipeline.id, event_type=want["event_type"]
        ).first()
        if trigger is None:
            trigger = client.event_triggers.create(
                pipeline_id=pipeline.id,
                event_type=want["event_type"],
                filter=copy.deepcopy(want["filter"]),
                enabled=True,
                name=want["name"],
            )
            created.append(f"trigger {trigger.id} ({want['event_type']} → {name})")
        else:
            existing.append(f"trigger {trigger.id} ({trigger.event_type} → {name})")
        triggers[name] = trigger.id

    return {
        "cluster": cluster_id,
        "pipelines": pipelines,
        "triggers": triggers,
        "created": created,
        "existing": existing,
    }
