"""The built-in platform: the events it emits, health probes, deployment actions; /metrics."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bud import BudClient, ValidationError
from tests.support import HttpReceiver


def events_of(client: BudClient, event_type: str) -> list[Any]:
    return list(client.events.list(event_type=event_type))


def test_model_update_emits_model_updated_with_changes(app_client: BudClient) -> None:
    model = app_client.models.add("Llama", source="hugging_face", auto_deploy=False, team="ml")
    [added] = events_of(app_client, "model.added")
    assert added.data["auto_deploy"] is False and added.data["team"] == "ml"
    assert added.data["model_id"] == model.id and added.source == "budplatform"
    app_client.models.update(model.id, auto_deploy=True)
    [updated] = events_of(app_client, "model.updated")
    assert updated.data["changes"] == {"auto_deploy": True} and updated.data["auto_deploy"] is True
    app_client.models.update(model.id, auto_deploy=True)  # no change: no event
    assert len(events_of(app_client, "model.updated")) == 1


def test_cluster_status_changes_emit_events(app_client: BudClient) -> None:
    app_client.clusters.create(name="Prod", id="cluster_prod", environment="production")
    app_client.clusters.update("cluster_prod", status="unhealthy", reason="GPU node down")
    app_client.clusters.update("cluster_prod", status="unhealthy")  # same status: nothing
    app_client.clusters.update("cluster_prod", status="ready")
    ready = events_of(app_client, "cluster.ready")
    [sick] = events_of(app_client, "cluster.unhealthy")
    assert sick.data == {
        "cluster_id": "cluster_prod",
        "cluster_name": "Prod",
        "environment": "production",
        "previous_status": "ready",
        "reason": "GPU node down",
    }
    assert [e.data["previous_status"] for e in ready] == ["unhealthy", None]


def test_health_url_probe_drives_cluster_health(app_client: BudClient) -> None:
    with HttpReceiver() as receiver:
        receiver.fail_first = 10**6  # answers 500
        app_client.clusters.create(
            name="Edge", id="cluster_edge", health_url=f"{receiver.url}/health"
        )
        deadline = time.monotonic() + 10
        while app_client.clusters.get("cluster_edge").status != "unhealthy":
            assert time.monotonic() < deadline, "the probe never marked the cluster unhealthy"
            time.sleep(0.1)
        [event] = events_of(app_client, "cluster.unhealthy")
        assert "HTTP 500" in event.data["reason"] and event.data["previous_status"] == "ready"
        receiver.fail_first = 0
        while app_client.clusters.get("cluster_edge").status != "ready":
            assert time.monotonic() < deadline + 10, "the probe never marked the cluster ready"
            time.sleep(0.1)


def test_cluster_health_blocks_deploys_to_a_sick_cluster(app_client: BudClient) -> None:
    app_client.clusters.create(name="Sick", id="cluster_sick", status="unhealthy")
    model = app_client.models.add("M", source="hugging_face")
    pipeline = app_client.pipelines.create(
        name="deploy",
        definition={
            "steps": [
                {
                    "id": "health_check",
                    "action": "cluster_health",
                    "params": {"cluster_id": "cluster_sick"},
                },
                {
                    "id": "deploy",
                    "action": "deployment_create",
                    "params": {
                        "model_id": model.id,
                        "cluster_id": "cluster_sick",
                        "deployment_name": "x",
                    },
                    "depends_on": ["health_check"],
                },
            ]
        },
    )
    done = app_client.executions.wait(app_client.pipelines.run(pipeline.id).id)
    assert done.status == "failed" and "cluster_sick is unhealthy" in done.error
    assert [s.status for s in done.steps] == ["failed", "cancelled"]
    assert list(app_client.deployments.list()) == []


def test_deployment_create_and_delete_actions(app_client: BudClient) -> None:
    app_client.clusters.create(name="Prod", id="cluster_prod")
    model = app_client.models.add("M", source="hugging_face")
    pipeline = app_client.pipelines.create(
        name="roll",
        definition={
            "steps": [
                {
                    "id": "deploy",
                    "action": "deployment_create",
                    "params": {
                        "model_id": model.id,
                        "cluster_id": "cluster_prod",
                        "deployment_name": "m-1",
                    },
                },
                {
                    "id": "rollback",
                    "action": "deployment_delete",
                    "params": {"deployment_id": "{{ steps.deploy.outputs.deployment_id }}"},
                    "depends_on": ["deploy"],
                },
            ]
        },
    )
    done = app_client.executions.wait(app_client.pipelines.run(pipeline.id).id)
    assert done.status == "succeeded"
    assert done.steps[1].outputs == {
        "deployment_id": done.steps[0].outputs["deployment_id"],
        "deleted": True,
    }
    assert list(app_client.deployments.list()) == []
    [created] = events_of(app_client, "deployment.created")
    assert created.data["deployment_name"] == "m-1" and created.causation_id == done.id


def test_unknown_model_fails_the_deploy_and_emits_deployment_failed(app_client: BudClient) -> None:
    app_client.clusters.create(name="Prod", id="cluster_prod")
    pipeline = app_client.pipelines.create(
        name="d",
        definition={
            "steps": [
                {
                    "id": "deploy",
                    "action": "deployment_create",
                    "params": {
                        "model_id": "model_ghost",
                        "cluster_id": "cluster_prod",
                        "deployment_name": "ghost",
                    },
                }
            ]
        },
    )
    done = app_client.executions.wait(app_client.pipelines.run(pipeline.id).id)
    assert done.status == "failed" and "model model_ghost not found" in done.error
    [failed] = events_of(app_client, "deployment.failed")
    assert failed.data["error_message"] == "model model_ghost not found"
    [deployment] = list(app_client.deployments.list(status="failed"))
    assert deployment.name == "ghost"


def test_metrics_openapi_and_health(app_client: BudClient) -> None:
    from starlette.testclient import TestClient

    pipeline = app_client.pipelines.create(
        name="m", definition={"steps": [{"id": "a", "action": "log", "params": {"message": "x"}}]}
    )
    app_client.event_triggers.create(
        pipeline_id=pipeline.id, event_type="cluster.ready", filter={"environment": "production"}
    )
    event = app_client.events.publish(
        "cluster.ready", {"cluster_id": "c", "environment": "production"}
    )
    app_client.events.publish("cluster.ready", {"cluster_id": "c", "environment": "staging"})
    app_client.executions.wait(app_client.events.get(event.event_id).executions[0])
    http = TestClient(app_client.app, base_url="http://localhost")  # type: ignore[attr-defined]
    text = http.get("/metrics").text
    assert 'bud_events_ingested_total{event_type="cluster.ready"} 2.0' in text
    assert 'outcome="fired"' in text
    assert 'bud_trigger_filtered_total{event_type="cluster.ready"} 1.0' in text
    assert 'bud_executions_finished_total{status="succeeded"} 1.0' in text
    spec = http.get("/openapi.json").json()
    assert "/v1/event-triggers" in spec["paths"] and "/v1/events" in spec["paths"]
    assert app_client.health()["status"] == "ok"


@pytest.mark.parametrize(
    ("step", "path"),
    [
        (
            {"action": "deployment_update", "params": {"deployment_id": "d"}},
            "params: needs one of: model_version or config",
        ),
        (
            {"action": "deployment_rollback", "params": {"deployment_id": "d", "to_revision": "x"}},
            "params.to_revision",
        ),
        ({"action": "deployment_list", "params": {"status": "gone"}}, "params.status"),
        ({"action": "model_list_waiting", "params": {"cluster": "c"}}, "params"),
        (
            {"action": "cluster_diagnostics", "params": {"cluster_id": "c", "checks": 0}},
            "params.checks",
        ),
        (
            {
                "action": "monitoring_configure",
                "params": {"deployment_id": "{{ event.deployment_id }}", "interval_seconds": 1},
            },
            "params.interval_seconds",
        ),
    ],
)
def test_bad_params_of_the_use_case_actions_are_refused_at_creation(
    app_client: BudClient, step: dict[str, Any], path: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        app_client.pipelines.create(name="bad", definition={"steps": [{"id": "s", **step}]})
    assert caught.value.status_code == 422
    assert f"steps[0] (s).{path}" in str(caught.value)
    assert app_client.pipelines.list().to_list() == []


def test_templated_params_of_the_use_case_actions_are_accepted(app_client: BudClient) -> None:
    steps = [
        {"id": "r", "action": "deployment_rollback", "params": {
            "deployment_id": "{{ event.deployment_id }}", "to_revision": "{{ event.n }}"}},
        {"id": "m", "action": "monitoring_configure", "params": {
            "deployment_id": "{{ event.deployment_id }}", "metrics": "{{ event.metrics }}"}},
    ]  # fmt: skip
    assert app_client.pipelines.create(name="ok", definition={"steps": steps}).id


def test_update_fail_roll_back_and_diagnose_on_each_store(app_client: BudClient) -> None:
    app_client.clusters.create(name="Prod", id="cluster_prod", environment="production")
    model = app_client.models.add("Llama", source="hugging_face", version="1")
    dep = app_client.deployments.create(model.id, "cluster_prod", "llama-prod")

    def run(*steps: dict[str, Any]) -> Any:
        pipeline = app_client.pipelines.create(name="ops", definition={"steps": list(steps)})
        done = app_client.executions.wait(app_client.pipelines.run(pipeline.id).id, timeout=30)
        assert done.status == "succeeded", done.error
        return {s.step_id: s.outputs for s in done.steps or []}

    update = {"deployment_id": dep.id, "model_version": "2", "config": {"replicas": 2}}
    run({"id": "u", "action": "deployment_update", "params": update})
    app_client.deployments.update(dep.id, status="failed", error_message="OOM")
    app_client.clusters.update("cluster_prod", status="unhealthy", reason="GPU node down")
    app_client.clusters.update("cluster_prod", status="ready", reason="GPU node back")
    out = run(
        {"id": "r", "action": "deployment_rollback", "params": {"deployment_id": dep.id}},
        {"id": "d", "action": "cluster_diagnostics", "depends_on": ["r"],
         "params": {"cluster_id": "cluster_prod", "checks": 2}},
    )  # fmt: skip
    assert (out["r"]["from_revision"], out["r"]["to_revision"], out["r"]["revision"]) == (2, 1, 3)
    revisions = app_client.deployments.revisions(dep.id)
    assert [(r.revision, r.model_version, r.config, r.good) for r in revisions] == [
        (1, "1", {}, True),
        (2, "2", {"replicas": 2}, False),
        (3, "1", {}, True),
    ]
    assert [(c["status"], c["reason"]) for c in out["d"]["checks"]] == [
        ("ready", "GPU node back"),
        ("unhealthy", "GPU node down"),
    ]
    assert out["d"]["deployments"][0]["status"] == "running"
