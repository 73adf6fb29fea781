"""The shipped examples (bud/examples/*.yaml), one per use case, against `bud serve --demo`.

Each test drives the built-in platform through the SDK as a user would (register a model,
fail a deployment, mark a cluster unhealthy) and checks the outcome: what the platform now
holds and what reached Slack, a real HTTP receiver. One server serves the module; each test
works on its own clusters and models.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bud import BudClient, Event, Execution
from bud.demo import DEMO_PIPELINES, EXAMPLES
from tests.support import BudProcess, HttpReceiver

pytestmark = pytest.mark.e2e

FANOUT = pytest.mark.skipif(
    len(DEMO_PIPELINES) < len(EXAMPLES),
    reason="the example needs for_each (fan-out), which this build's pipelines do not have yet "
    "(it is built on branch workflow)",
)


class Demo:
    def __init__(self, client: BudClient, slack: HttpReceiver) -> None:
        self.client = client
        self.slack = slack
        self.pipelines = {p.id: p.name for p in client.pipelines.list()}

    def event(self, event_type: str, timeout: float = 15, **data: Any) -> Event:
        """The event of that type whose data has these fields (the platform emitted it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.client.events.list(event_type=event_type):
                if all(event.data.get(k) == v for k, v in data.items()):
                    return event
            time.sleep(0.05)
        raise AssertionError(f"no {event_type} event with {data}")

    def runs(self, event: Event) -> dict[str, Execution]:
        """The executions the event started, finished, by pipeline name."""
        ids = self.client.events.get(event.event_id).executions or []
        done = [self.client.executions.wait(i, timeout=30) for i in ids]
        return {self.pipelines[e.pipeline_id]: self.client.executions.get(e.id) for e in done}

    def slack_text(self, contains: str) -> str:
        body = self.slack.wait_for(lambda b: contains in b.get("text", ""), path="/slack")
        return str(body["text"])

    def slack_texts(self, contains: str) -> list[str]:
        return [str(b["text"]) for b in self.slack.bodies("/slack") if contains in b["text"]]


def outputs(execution: Execution, step_id: str) -> dict[str, Any]:
    [step] = [s for s in execution.steps or [] if s.step_id == step_id]
    return dict(step.outputs or {})


def status_of(execution: Execution, step_id: str) -> str:
    [step] = [s for s in execution.steps or [] if s.step_id == step_id]
    return str(step.status)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    data_dir: Path = tmp_path_factory.mktemp("examples") / "bud"
    with HttpReceiver() as slack:
        env = {"BUD_SLACK_WEBHOOK_URL": f"{slack.url}/slack"}
        with BudProcess(data_dir, env=env, args=["--demo"]) as server:
            client = BudClient(base_url=server.url)
            deadline = time.monotonic() + 20
            while len(client.pipelines.list().to_list()) < len(DEMO_PIPELINES):
                assert time.monotonic() < deadline, "the demo was not loaded"
                time.sleep(0.1)
            yield Demo(client, slack)


def _update(demo: Demo, deployment_id: str, model_version: str) -> None:
    """An operator moves a deployment to a new model version (a one-step pipeline, by hand)."""
    client = demo.client
    pipeline = client.pipelines.create(
        name=f"update {deployment_id}",
        definition={
            "steps": [
                {
                    "id": "update",
                    "action": "deployment_update",
                    "params": {"deployment_id": deployment_id, "model_version": model_version},
                }
            ]
        },
    )
    run = client.pipelines.run(pipeline.id)
    assert client.executions.wait(run.id, timeout=30).status == "succeeded"


def test_a_failed_deployment_alerts_and_rolls_back(demo: Demo) -> None:
    client = demo.client
    client.clusters.create("Rollback", id="cluster_rb", environment="staging")
    model = client.models.add("rollme", "hugging_face", version="1")
    deployment = client.deployments.create(model.id, "cluster_rb", "rollme-rb")
    _update(demo, deployment.id, "2")
    client.deployments.update(deployment.id, status="failed", error_message="OOM after update")

    runs = demo.runs(demo.event("deployment.failed", deployment_id=deployment.id))
    assert {n: e.status for n, e in runs.items()} == {
        "Deployment Failure Alerts": "succeeded",
        "Roll Back Failed Deployments": "succeeded",
    }
    assert demo.slack_text("🚨 Deployment rollme-rb") == (  # priority high: a warning sign
        ":warning: 🚨 Deployment rollme-rb failed: OOM after update"
    )
    assert demo.slack_text("Rolled back rollme-rb") == (
        "↩️ Rolled back rollme-rb from revision 2 to revision 1 after: OOM after update"
    )
    back = client.deployments.get(deployment.id)
    assert (back.status, back.error_message) == ("running", None)
    revisions = client.deployments.revisions(deployment.id)
    assert [(r.revision, r.model_version, r.reason, r.good) for r in revisions] == [
        (1, "1", "created", True),
        (2, "2", "updated", False),
        (3, "1", "rollback", True),
    ]
    assert revisions[1].error_message == "OOM after update" and revisions[2].source_revision == 1


def test_a_deployment_that_never_ran_is_alerted_and_left_alone(demo: Demo) -> None:
    client = demo.client
    client.clusters.create("Down", id="cluster_down", environment="staging", status="unhealthy")
    model = client.models.add("nowhere", "hugging_face")
    deployment = client.deployments.create(model.id, "cluster_down", "nowhere-down")
    assert deployment.status == "failed"

    runs = demo.runs(demo.event("deployment.failed", deployment_id=deployment.id))
    rollback = runs["Roll Back Failed Deployments"]
    assert rollback.status == "succeeded"
    assert outputs(rollback, "rollback")["rolled_back"] is False
    assert status_of(rollback, "notify") == "skipped"
    assert demo.slack_text("🚨 Deployment nowhere-down failed") == (
        ":warning: 🚨 Deployment nowhere-down failed: cluster cluster_down is unhealthy, not ready"
    )
    assert demo.slack_texts("Rolled back nowhere-down") == []
    assert [r.revision for r in client.deployments.revisions(deployment.id)] == [1]


def test_an_unhealthy_cluster_is_diagnosed_and_the_findings_sent(demo: Demo) -> None:
    client = demo.client
    client.clusters.create("Diag", id="cluster_diag", environment="staging")
    model = client.models.add("diagnosed", "hugging_face")
    ok = client.deployments.create(model.id, "cluster_diag", "diag-ok")
    bad = client.deployments.create(model.id, "cluster_diag", "diag-bad")
    client.deployments.update(bad.id, status="failed", error_message="CUDA error")
    client.clusters.update("cluster_diag", status="unhealthy", reason="GPU node down")

    runs = demo.runs(demo.event("cluster.unhealthy", cluster_id="cluster_diag"))
    diagnosis = runs["Diagnose Unhealthy Clusters"]
    assert diagnosis.status == "succeeded", diagnosis.error
    found = outputs(diagnosis, "diagnose")
    assert (found["status"], found["reason"], found["healthy"]) == (
        "unhealthy",
        "GPU node down",
        False,
    )
    assert [d["deployment_id"] for d in found["deployments"]] == [ok.id, bad.id]
    assert found["failed_deployments"] == [bad.id]
    assert [(c["previous_status"], c["status"]) for c in found["checks"]] == [
        ("ready", "unhealthy"),
        (None, "ready"),
    ]
    text = demo.slack_text("🩺 Cluster cluster_diag")
    assert text.startswith(
        ":warning: 🩺 Cluster cluster_diag (Diag, staging) is unhealthy: GPU node down. "
        "2 deployment(s) on it: 1 failed, 1 running. Failed: diag-bad (CUDA error). "
        "Recent health changes: "
    ), text
    assert "ready → unhealthy (request: GPU node down)" in text


def test_a_production_deployment_gets_monitoring_and_staging_does_not(demo: Demo) -> None:
    client = demo.client
    client.clusters.create("Prod EU", id="cluster_prod_eu", environment="production")
    client.clusters.create("Staging", id="cluster_staging", environment="staging")
    model = client.models.add("watched", "hugging_face")
    prod = client.deployments.create(model.id, "cluster_prod_eu", "watched-prod")
    staging = client.deployments.create(model.id, "cluster_staging", "watched-staging")

    runs = demo.runs(demo.event("deployment.created", deployment_id=prod.id))
    assert runs["Monitor Production Deployments"].status == "succeeded"
    [monitor] = client.monitors.list(deployment_id=prod.id)
    assert (monitor.cluster_id, monitor.environment) == ("cluster_prod_eu", "production")
    assert monitor.config == {
        "metrics": ["latency_p99_ms", "error_rate", "requests_per_second"],
        "alerts": [
            {"metric": "error_rate", "above": 0.05, "for_seconds": 300},
            {"metric": "latency_p99_ms", "above": 2000, "for_seconds": 300},
        ],
        "channel": "slack",
        "interval_seconds": 60,
    }
    assert monitor.configured_by == runs["Monitor Production Deployments"].id

    staged = demo.event("deployment.created", deployment_id=staging.id)
    assert demo.runs(staged) == {}
    [decision] = [
        d
        for d in client.events.get(staged.event_id).decisions or []
        if demo.pipelines.get(d.pipeline_id or "") == "Monitor Production Deployments"
    ]
    assert decision.outcome == "filtered"
    assert client.monitors.list(deployment_id=staging.id).to_list() == []


@FANOUT
def test_a_model_update_updates_every_deployment_of_the_model(demo: Demo) -> None:
    client = demo.client
    client.clusters.create("Update A", id="cluster_ua", environment="staging")
    client.clusters.create("Update B", id="cluster_ub", environment="staging")
    model = client.models.add("evolving", "hugging_face", version="1")
    other = client.models.add("bystander", "hugging_face", version="1")
    mine = [
        client.deployments.create(model.id, "cluster_ua", "evolving-a"),
        client.deployments.create(model.id, "cluster_ub", "evolving-b"),
    ]
    theirs = client.deployments.create(other.id, "cluster_ua", "bystander-a")
    client.models.update(model.id, version="2")

    runs = demo.runs(demo.event("model.updated", model_id=model.id))
    execution = runs["Update Deployments of Updated Models"]
    assert execution.status == "succeeded", execution.error
    for deployment in mine:
        revisions = client.deployments.revisions(deployment.id)
        assert [(r.revision, r.model_version) for r in revisions] == [(1, "1"), (2, "2")]
        assert client.deployments.get(deployment.id).status == "running"
    assert [r.model_version for r in client.deployments.revisions(theirs.id)] == ["1"]
    assert demo.slack_text("of evolving") == "Updated 2 deployment(s) of evolving to version 2"


@FANOUT
def test_a_ready_cluster_deploys_every_model_waiting_for_it(demo: Demo) -> None:
    client = demo.client
    client.clusters.create("GPU", id="cluster_gpu", environment="staging", status="unhealthy")
    waiting = [
        client.models.add("wait-one", "hugging_face", target_cluster="cluster_gpu"),
        client.models.add("wait-two", "local", target_cluster="cluster_gpu"),
    ]
    elsewhere = client.models.add("wait-elsewhere", "local", target_cluster="cluster_other")
    client.clusters.update("cluster_gpu", status="ready", reason="nodes back")

    runs = demo.runs(demo.event("cluster.ready", cluster_id="cluster_gpu"))
    execution = runs["Deploy Models Waiting for a Cluster"]
    assert execution.status == "succeeded", execution.error
    deployed = client.deployments.list(cluster_id="cluster_gpu").to_list()
    assert sorted((d.model_id, d.name, d.status) for d in deployed) == sorted(
        (m.id, f"{m.name}-cluster_gpu", "running") for m in waiting
    )
    assert client.deployments.list(model_id=elsewhere.id).to_list() == []
    assert demo.slack_text("Cluster GPU is ready") == (
        "Cluster GPU is ready: deployed 2 waiting model(s)"
    )


@FANOUT
def test_a_deploy_with_wait_goes_on_only_once_the_deployment_runs(tmp_path: Path) -> None:
    """With deployments that start ``pending`` (as on a real platform), the cluster.ready
    example's deploy step waits for each to run; only then does the notification go out."""
    with HttpReceiver() as slack:
        env = {
            "BUD_SLACK_WEBHOOK_URL": f"{slack.url}/slack",
            "BUD_PLATFORM_DEPLOYMENTS_PENDING": "true",
        }
        with BudProcess(tmp_path / "bud", env=env, args=["--demo"]) as server:
            client = BudClient(base_url=server.url)
            deadline = time.monotonic() + 20
            while len(client.pipelines.list().to_list()) < len(DEMO_PIPELINES):
                assert time.monotonic() < deadline, "the demo was not loaded"
                time.sleep(0.1)
            demo = Demo(client, slack)
            client.clusters.create(
                "Slow", id="cluster_slow", environment="staging", status="unhealthy"
            )
            model = client.models.add("patient", "hugging_face", target_cluster="cluster_slow")
            client.clusters.update("cluster_slow", status="ready", reason="nodes back")
            event = demo.event("cluster.ready", cluster_id="cluster_slow")
            [execution_id] = [
                i
                for i in client.events.get(event.event_id).executions or []
                if demo.pipelines[client.executions.get(i).pipeline_id]
                == "Deploy Models Waiting for a Cluster"
            ]

            def deploy_step() -> Any:
                found = client.executions.get(execution_id)
                return next(s for s in found.steps or [] if s.step_id == "deploy")

            deadline = time.monotonic() + 20
            while not (deploy_step().items or []) or deploy_step().items[0].status != "waiting":
                assert time.monotonic() < deadline, "the deploy item never waited"
                time.sleep(0.05)
            [deployment] = client.deployments.list(cluster_id="cluster_slow").to_list()
            assert deployment.status == "pending"
            time.sleep(1.0)  # it goes on waiting: nothing finishes and nothing is sent
            assert client.executions.get(execution_id).status == "running"
            assert demo.slack_texts("Cluster Slow is ready") == []

            client.deployments.update(deployment.id, status="running")
            done = client.executions.wait(execution_id, timeout=30)
            assert done.status == "succeeded", done.error
            assert demo.slack_text("Cluster Slow is ready") == (
                "Cluster Slow is ready: deployed 1 waiting model(s)"
            )
            [item] = outputs(done, "deploy")["items"]
            assert (item["deployment_id"], item["status"]) == (deployment.id, "running")
            assert client.deployments.get(deployment.id).model_id == model.id


@FANOUT
def test_a_deployment_on_a_sick_cluster_does_not_hold_back_the_others(demo: Demo) -> None:
    client = demo.client
    client.clusters.create("Fine", id="cluster_fine", environment="staging")
    client.clusters.create("Sick", id="cluster_sick2", environment="staging")
    model = client.models.add("stubborn", "hugging_face", version="1")
    fine = client.deployments.create(model.id, "cluster_fine", "stubborn-fine")
    sick = client.deployments.create(model.id, "cluster_sick2", "stubborn-sick")
    client.clusters.update("cluster_sick2", status="unhealthy", reason="disk full")
    client.models.update(model.id, version="2")

    runs = demo.runs(demo.event("model.updated", model_id=model.id))
    execution = runs["Update Deployments of Updated Models"]
    assert execution.status == "failed"
    assert "cluster cluster_sick2 is unhealthy, not ready" in (execution.error or "")
    assert [r.model_version for r in client.deployments.revisions(fine.id)] == ["1", "2"]
    assert [r.model_version for r in client.deployments.revisions(sick.id)] == ["1"]
    assert status_of(execution, "notify") != "succeeded"
    assert demo.slack_texts("of stubborn") == []
