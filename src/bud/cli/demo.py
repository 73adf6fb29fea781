"""``bud demo``: load the demo (``bud.demo``: the shipped example pipelines, one per use case,
their triggers, a cluster) into any server, through the SDK. ``bud serve --demo`` loads the
same definitions in process.
"""

from __future__ import annotations

import copy
from typing import Any

from bud.client import BudClient
from bud.demo import DEMO_CLUSTER, DEMO_PIPELINES
from bud.errors import NotFoundError

__all__ = ["DEMO_CLUSTER", "DEMO_PIPELINES", "load_demo"]


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
