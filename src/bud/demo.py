"""The demo: the shipped examples (one per use case of the product document), their triggers
and a cluster.

The examples are YAML files in ``bud/examples/`` (docs/examples.md describes them); the
model.added and deployment.failed files hold the product document's own examples, as written.
``bud serve --demo`` loads them in process, through the services, once the core has started
(``load``); ``bud demo`` loads the same definitions into any server through the SDK
(``bud.cli.demo``). Loading is idempotent: pipelines are matched by name, the cluster by id,
a pipeline's trigger by event type. The auto-deploy pipeline and its trigger get the ids the
product document's examples name, ``pipe_abc123`` and ``trig_xyz789`` (unless taken).

On a demo server the demo also recognises its own examples: creating one of these pipelines
again, by the same name with the same definition, answers the loaded pipeline instead of a
copy, and creating its trigger again answers the loaded trigger (``existing_pipeline``,
``existing_trigger``). So the product document's snippets, run as written against
``bud serve --demo``, leave one pipeline and one trigger, and a model gets one deployment.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bud.errors import ConflictError, NotFoundError

if TYPE_CHECKING:
    from bud.services import Bud

__all__ = [
    "DEMO_CLUSTER",
    "DEMO_PIPELINES",
    "EXAMPLES",
    "EXAMPLES_DIR",
    "existing_pipeline",
    "existing_trigger",
    "load",
]

log = logging.getLogger("bud.demo")

DEMO_CLUSTER: dict[str, Any] = {
    "id": "cluster_prod",
    "name": "Production",
    "environment": "production",
}

# The shipped examples, one file per use case of the product document's table of event types,
# in its order. A file holds one pipeline with its trigger, or several (YAML documents).
EXAMPLES_DIR = Path(__file__).parent / "examples"
EXAMPLE_FILES = (
    "model-added-auto-deploy.yaml",
    "model-updated-update-deployments.yaml",
    "deployment-created-monitoring.yaml",
    "deployment-failed-alert-rollback.yaml",
    "cluster-ready-deploy-waiting.yaml",
    "cluster-unhealthy-diagnostics.yaml",
)


def _read_examples() -> list[dict[str, Any]]:
    examples: list[dict[str, Any]] = []
    for name in EXAMPLE_FILES:
        for doc in yaml.safe_load_all((EXAMPLES_DIR / name).read_text(encoding="utf-8")):
            examples.append({**doc, "file": name, "requires": list(doc.get("requires") or [])})
    return examples


def _supported(requires: list[str]) -> bool:
    """Whether this build's pipelines have the step fields an example needs (``for_each``)."""
    try:
        from bud.pipelines import STEP_KEYS
    except ImportError:  # the plain install (the SDK and CLI only): the server decides
        return True
    return all(field in STEP_KEYS for field in requires)


# Every shipped example (bud/examples/*.yaml), and those the demo loads: the examples whose
# step fields this build knows.
EXAMPLES: list[dict[str, Any]] = _read_examples()
DEMO_PIPELINES: list[dict[str, Any]] = [e for e in EXAMPLES if _supported(e["requires"])]


def _spec(name: Any) -> dict[str, Any] | None:
    return next((s for s in DEMO_PIPELINES if s["name"] == name), None)


async def _pipelines_named(core: Bud, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await core.pipelines.list(500, cursor)
        found.extend(p for p in page["items"] if p["name"] == name)
        cursor = page.get("next_cursor")
        if not cursor:
            return found


async def _trigger_of(
    core: Bud, pipeline_id: str, event_type: str, filter: Any
) -> dict[str, Any] | None:
    page = await core.triggers.list(pipeline_id=pipeline_id, event_type=event_type, limit=500)
    if filter is None:
        return next(iter(page["items"]), None)
    return next((t for t in page["items"] if (t["filter"] or {}) == (filter or {})), None)


async def existing_pipeline(
    core: Bud, name: Any, definition: Any, chosen_id: str | None = None
) -> dict[str, Any] | None:
    """The loaded demo pipeline when ``name`` and ``definition`` are one of the demo's own."""
    spec = _spec(name)
    if spec is None or chosen_id is not None or definition != spec["definition"]:
        return None
    for pipeline in await _pipelines_named(core, spec["name"]):
        if pipeline["definition"] == spec["definition"]:
            return pipeline
    return None


async def existing_trigger(
    core: Bud, pipeline_id: Any, event_type: Any, filter: Any, chosen_id: str | None = None
) -> dict[str, Any] | None:
    """The loaded demo trigger when this is the demo's own trigger on its own pipeline."""
    if chosen_id is not None or not isinstance(pipeline_id, str):
        return None
    try:
        pipeline = await core.pipelines.get(pipeline_id)
    except NotFoundError:
        return None
    spec = _spec(pipeline["name"])
    if spec is None or pipeline["definition"] != spec["definition"]:
        return None
    want = spec["trigger"]
    if event_type != want["event_type"] or (filter or {}) != (want["filter"] or {}):
        return None
    return await _trigger_of(core, pipeline_id, event_type, want["filter"])


async def load(core: Bud, inbox_url: str | None = None) -> dict[str, Any]:
    """Create what is missing of the demo in this server, through its services.

    ``inbox_url``: where the ``slack`` channel points when none is configured (the demo
    server's own ``/demo/slack``). Returns ``{"cluster", "pipelines": {name: id},
    "triggers": {name: id}, "created": [...], "existing": [...]}``.
    """
    created: list[str] = []
    existing: list[str] = []
    cluster_id = DEMO_CLUSTER["id"]
    try:
        await core.platform.get_cluster(cluster_id)
        existing.append(f"cluster {cluster_id}")
    except NotFoundError:
        await core.platform.create_cluster(
            DEMO_CLUSTER["name"], cluster_id, DEMO_CLUSTER["environment"]
        )
        created.append(f"cluster {cluster_id} ({DEMO_CLUSTER['name']})")

    pipelines: dict[str, str] = {}
    triggers: dict[str, str] = {}
    for spec in DEMO_PIPELINES:
        name = spec["name"]
        named = await _pipelines_named(core, name)
        if named:
            pipeline = named[0]
            existing.append(f"pipeline {pipeline['id']} ({name})")
        else:
            try:  # with the document's id, unless something else has it
                pipeline = await core.pipelines.create(
                    name, copy.deepcopy(spec["definition"]), spec["description"], spec.get("id")
                )
            except ConflictError:
                pipeline = await core.pipelines.create(
                    name, copy.deepcopy(spec["definition"]), spec["description"]
                )
            created.append(f"pipeline {pipeline['id']} ({name})")
        pipelines[name] = pipeline["id"]
        want = spec["trigger"]
        trigger = await _trigger_of(core, pipeline["id"], want["event_type"], None)
        if trigger is None:
            args = (pipeline["id"], want["event_type"], copy.deepcopy(want["filter"]), True)
            try:
                trigger = await core.triggers.create(*args, want["name"], None, want.get("id"))
            except ConflictError:
                trigger = await core.triggers.create(*args, want["name"])
            created.append(f"trigger {trigger['id']} ({want['event_type']} → {name})")
        else:
            existing.append(f"trigger {trigger['id']} ({trigger['event_type']} → {name})")
        triggers[name] = trigger["id"]

    if inbox_url and "slack" not in {c["name"] for c in (await core.config.channels())["items"]}:
        # No Slack webhook configured: deliver to the demo server's own inbox instead.
        await core.config.set_channel("slack", {"url": inbox_url})
        created.append(f"channel slack → {inbox_url}")
    return {
        "cluster": cluster_id,
        "pipelines": pipelines,
        "triggers": triggers,
        "created": created,
        "existing": existing,
    }
