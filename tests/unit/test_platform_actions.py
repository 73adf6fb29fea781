"""The use-case platform actions, each run alone on the built-in platform over the memory fake.

Revisions and rollbacks, models waiting for a cluster, diagnostics and monitoring: what each
action answers and what it records in the platform. No sleeps: the clock is a ManualClock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bud.actions.base import ActionContext, ActionError
from bud.actions.registry import default_registry
from bud.clock import ManualClock
from bud.errors import ValidationError
from bud.services import Bud
from bud.settings import Settings
from bud.store.memory import MemoryRepository

REGISTRY = default_registry(entry_points_group=None)


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[Bud]:
    bud = Bud(
        Settings(data_dir=tmp_path), repo=MemoryRepository(), clock=ManualClock(), run_workers=False
    )
    await bud.start()
    try:
        yield bud
    finally:
        await bud.stop()


async def run(core: Bud, name: str, params: dict[str, Any], step: str = "s") -> dict[str, Any]:
    action = REGISTRY.get(name)
    action.check_params(params, where="params", rendered=True)
    ctx = ActionContext(
        execution_id="exe_test", step_id=step, attempt=1, params=params, platform=core.platform
    )
    return await action(ctx, params)


async def deployed(core: Bud, name: str = "llama", version: str = "1") -> dict[str, Any]:
    try:
        await core.platform.get_cluster("cluster_prod")
    except Exception:
        await core.platform.create_cluster("Prod", "cluster_prod", "production")
    model = await core.platform.add_model(name, "hugging_face", metadata={"version": version})
    return await core.platform.create_deployment(model["id"], "cluster_prod", f"{name}-d")


async def test_update_makes_a_revision_and_keeps_the_previous(core: Bud) -> None:
    dep = await deployed(core)
    out = await run(core, "deployment_update", {"deployment_id": dep["id"], "model_version": "2"})
    assert out["revision"] == 2 and out["previous_revision"] == 1
    assert (out["model_version"], out["previous_model_version"]) == ("2", "1")
    assert out["changed"] is True and out["status"] == "running"
    again = await run(core, "deployment_update", {"deployment_id": dep["id"], "model_version": "2"})
    assert again["revision"] == 2  # a re-run of the step makes no second revision
    same = await run(
        core, "deployment_update", {"deployment_id": dep["id"], "model_version": "2"}, step="t"
    )
    assert same["changed"] is False and same["revision"] == 2
    cfg = await run(
        core, "deployment_update", {"deployment_id": dep["id"], "config": {"replicas": 3}}, "u"
    )
    assert cfg["revision"] == 3 and cfg["config"] == {"replicas": 3} and cfg["model_version"] == "2"
    revs = await core.platform.list_revisions(dep["id"])
    assert [(r["revision"], r["reason"], r["status"], r["good"]) for r in revs] == [
        (1, "created", "superseded", True),
        (2, "updated", "superseded", True),
        (3, "updated", "running", True),
    ]


async def test_rollback_goes_back_to_the_last_good_revision(core: Bud) -> None:
    dep = await deployed(core)
    await run(core, "deployment_update", {"deployment_id": dep["id"], "model_version": "2"})
    await run(core, "deployment_update", {"deployment_id": dep["id"], "model_version": "3"}, "t")
    await core.platform.update_deployment(dep["id"], status="failed", error_message="OOM")
    # revision 3 failed: back to 2, the last good one before it
    out = await run(core, "deployment_rollback", {"deployment_id": dep["id"]})
    assert out == {
        "deployment_id": dep["id"],
        "deployment_name": "llama-d",
        "rolled_back": True,
        "revision": 4,
        "from_revision": 3,
        "to_revision": 2,
        "model_version": "2",
        "status": "running",
    }
    revs = await core.platform.list_revisions(dep["id"])
    assert [(r["revision"], r["good"], r["source_revision"]) for r in revs][2:] == [
        (3, False, None),
        (4, True, 2),
    ]
    assert revs[2]["error_message"] == "OOM"
    assert (await core.platform.get_deployment(dep["id"]))["error_message"] is None
    # an explicit revision, and one that never ran
    back = await run(
        core, "deployment_rollback", {"deployment_id": dep["id"], "to_revision": 1}, "t"
    )
    assert (back["to_revision"], back["model_version"], back["revision"]) == (1, "1", 5)
    with pytest.raises(ActionError, match=r"revision 3 of deployment .* never ran"):
        await run(core, "deployment_rollback", {"deployment_id": dep["id"], "to_revision": 3}, "u")


async def test_rollback_without_a_good_revision(core: Bud) -> None:
    dep = await deployed(core)
    await core.platform.update_deployment(dep["id"], status="failed", error_message="OOM")
    with pytest.raises(ActionError, match="no earlier good revision") as caught:
        await run(core, "deployment_rollback", {"deployment_id": dep["id"]})
    assert caught.value.retryable is False and caught.value.outputs["rolled_back"] is False
    out = await run(core, "deployment_rollback", {"deployment_id": dep["id"], "missing_ok": True})
    assert out["rolled_back"] is False and out["status"] == "failed"
    gone = await run(core, "deployment_rollback", {"deployment_id": "dep_gone", "missing_ok": True})
    assert gone["rolled_back"] is False and gone["deployment_name"] is None


async def test_update_and_rollback_refuse_a_cluster_that_is_not_ready(core: Bud) -> None:
    dep = await deployed(core)
    await core.platform.update_cluster("cluster_prod", status="unhealthy", reason="GPU down")
    with pytest.raises(ActionError, match="cluster cluster_prod is unhealthy, not ready"):
        await run(core, "deployment_update", {"deployment_id": dep["id"], "model_version": "2"})
    with pytest.raises(ActionError, match="deployment dep_nope not found"):
        await run(core, "deployment_rollback", {"deployment_id": "dep_nope"})
    assert len(await core.platform.list_revisions(dep["id"])) == 1
    await core.platform.update_cluster("cluster_prod", status="ready")
    await run(core, "deployment_update", {"deployment_id": dep["id"], "model_version": "2"}, "t")
    await core.platform.update_cluster("cluster_prod", status="unhealthy")
    with pytest.raises(ActionError, match="cluster cluster_prod is unhealthy, not ready"):
        await run(core, "deployment_rollback", {"deployment_id": dep["id"]})
    assert len(await core.platform.list_revisions(dep["id"])) == 2


async def test_deployment_list_of_a_model(core: Bud) -> None:
    a = await deployed(core, "a")
    b = await core.platform.create_deployment(a["model_id"], "cluster_prod", "a-second")
    await deployed(core, "other")
    out = await run(core, "deployment_list", {"model_id": a["model_id"]})
    assert out["deployment_ids"] == [a["id"], b["id"]] and out["count"] == 2
    assert out["deployments"][0]["deployment_name"] == "a-d"
    await core.platform.update_deployment(b["id"], status="failed")
    running = await run(core, "deployment_list", {"model_id": a["model_id"], "status": "running"})
    assert running["deployment_ids"] == [a["id"]]


async def test_models_waiting_for_a_cluster(core: Bud) -> None:
    await core.platform.create_cluster("GPU", "cluster_gpu", "production", status="unhealthy")
    p = core.platform
    first = await p.add_model("first", "hugging_face", metadata={"target_cluster": "cluster_gpu"})
    second = await p.add_model("second", "local", metadata={"target_cluster": "cluster_gpu"})
    await p.add_model("elsewhere", "local", metadata={"target_cluster": "cluster_x"})
    await p.add_model("untargeted", "local")
    out = await run(core, "model_list_waiting", {"cluster_id": "cluster_gpu"})
    assert out["model_ids"] == [first["id"], second["id"]] and out["count"] == 2
    assert out["models"][0]["model_name"] == "first"
    # a failed deployment still waits; a running one does not
    await p.create_deployment(first["id"], "cluster_gpu", "f")  # cluster unhealthy: failed
    await p.update_cluster("cluster_gpu", status="ready")
    await p.create_deployment(second["id"], "cluster_gpu", "s")
    out = await run(core, "model_list_waiting", {"cluster_id": "cluster_gpu"})
    assert out["model_ids"] == [first["id"]]
    with pytest.raises(ActionError, match="cluster cluster_nope not found"):
        await run(core, "model_list_waiting", {"cluster_id": "cluster_nope"})


async def test_cluster_diagnostics_gathers_the_clusters_state(core: Bud) -> None:
    dep = await deployed(core)
    await core.platform.update_deployment(dep["id"], status="failed", error_message="OOM")
    await core.platform.update_cluster("cluster_prod", status="unhealthy", reason="GPU node down")
    out = await run(core, "cluster_diagnostics", {"cluster_id": "cluster_prod"})
    assert (out["status"], out["reason"], out["healthy"]) == ("unhealthy", "GPU node down", False)
    assert out["deployment_count"] == 1 and out["failed_deployments"] == [dep["id"]]
    assert [(c["previous_status"], c["status"], c["source"]) for c in out["checks"]] == [
        ("ready", "unhealthy", "request"),
        (None, "ready", "created"),
    ]
    assert out["summary"].startswith(
        "Cluster cluster_prod (Prod, production) is unhealthy: GPU node down. "
        "1 deployment(s) on it: 1 failed. Failed: llama-d (OOM). Recent health changes: "
    )
    one = await run(core, "cluster_diagnostics", {"cluster_id": "cluster_prod", "checks": 1})
    assert len(one["checks"]) == 1


async def test_health_results_are_bounded(core: Bud) -> None:
    await core.platform.create_cluster("Flappy", "cluster_f")
    for i in range(60):
        await core.platform.update_cluster(
            "cluster_f", status="unhealthy" if i % 2 == 0 else "ready"
        )
    out = await run(core, "cluster_diagnostics", {"cluster_id": "cluster_f", "checks": 50})
    assert len(out["checks"]) == 50 and out["checks"][0]["status"] == "ready"


async def test_monitoring_configure_records_the_monitor(core: Bud) -> None:
    dep = await deployed(core)
    params = {
        "deployment_id": dep["id"],
        "metrics": ["latency_p99_ms", "error_rate"],
        "alerts": [{"metric": "error_rate", "above": 0.05, "for_seconds": 300}],
        "channel": "slack",
    }
    out = await run(core, "monitoring_configure", params)
    assert out["created"] is True and out["environment"] == "production"
    [monitor] = await core.platform.list_records("monitors", {"deployment_id": dep["id"]}, 10, None)
    assert monitor["id"] == out["monitor_id"] and monitor["configured_by"] == "exe_test"
    assert monitor["config"] == {
        "metrics": ["latency_p99_ms", "error_rate"],
        "alerts": [{"metric": "error_rate", "above": 0.05, "for_seconds": 300}],
        "channel": "slack",
        "interval_seconds": 60,
    }
    again = await run(core, "monitoring_configure", {"deployment_id": dep["id"]})
    assert again["created"] is False and again["monitor_id"] == monitor["id"]
    assert again["metrics"] == ["latency_p99_ms", "error_rate", "requests_per_second"]
    with pytest.raises(ActionError, match=r"alerts\[0\].metric: 'gpu' is not collected"):
        await run(
            core, "monitoring_configure", {**params, "alerts": [{"metric": "gpu", "above": 1}]}
        )
    await core.platform.delete_deployment(dep["id"])
    assert await core.platform.list_records("monitors", {}, 10, None) == []


@pytest.mark.parametrize(
    ("name", "params", "path"),
    [
        ("deployment_update", {"deployment_id": "d"}, "params"),
        ("deployment_update", {"deployment_id": "d", "model_version": 2}, "params.model_version"),
        ("deployment_rollback", {"deployment_id": "d", "to_revision": 0}, "params.to_revision"),
        ("deployment_list", {"status": "gone"}, "params.status"),
        ("model_list_waiting", {}, "params"),
        ("cluster_diagnostics", {"cluster_id": "c", "checks": 500}, "params.checks"),
        ("monitoring_configure", {"deployment_id": "d", "metrics": []}, "params.metrics"),
        (
            "monitoring_configure",
            {"deployment_id": "d", "alerts": [{"metric": "error_rate"}]},
            "params.alerts[0]",
        ),
    ],
)
def test_bad_params_name_the_path(name: str, params: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationError) as caught:
        REGISTRY.get(name).check_params(params, where="params", rendered=False)
    assert caught.value.details["path"] == path
