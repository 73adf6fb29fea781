"""Every example of the product document, run as written against a real ``bud serve``."""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bud import BudClient, NotFoundError
from tests.support import BudProcess, HttpReceiver, MailBox

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(
    data_dir: Path, receiver: HttpReceiver, mailbox: MailBox, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BudProcess]:
    env = {
        "BUD_SLACK_WEBHOOK_URL": f"{receiver.url}/slack",
        "BUD_SMTP_URL": mailbox.url,
        "BUD_SMTP_FROM": "bud@example.com",
    }
    with BudProcess(data_dir, env=env) as proc:
        monkeypatch.setenv("BUD_URL", proc.url)  # BudClient() with no arguments, as in the spec
        yield proc


def executions_of(client: BudClient, event_id: str, timeout: float = 10.0) -> list[str]:
    event = client.events.get(event_id)
    return list(event.executions or [])


def wait_event(client: BudClient, event_type: str, predicate, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in client.events.list(event_type=event_type):
            if predicate(event):
                return client.events.get(event.event_id)
        time.sleep(0.1)
    raise AssertionError(f"no {event_type} event matched")


def test_auto_deploy_on_model_add(server: BudProcess, receiver: HttpReceiver) -> None:
    # -- the spec's code, as written ---------------------------------------------------------
    client = BudClient()

    # Create auto-deployment pipeline
    pipeline = client.pipelines.create(
        name="Auto-Deploy New Models",
        definition={
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
    )

    # Create event trigger
    trigger = client.event_triggers.create(
        pipeline_id=pipeline.id,
        event_type="model.added",
        filter={"model_source": "hugging_face", "auto_deploy": True},
        enabled=True,
    )
    # -----------------------------------------------------------------------------------------
    client.clusters.create(name="Production", id="cluster_prod", environment="production")
    model = client.models.add("Llama-3.2-1B", source="hugging_face", auto_deploy=True)
    event = wait_event(client, "model.added", lambda e: e.data.get("model_id") == model.id)
    assert event.data["auto_deploy"] is True and event.data["model_name"] == "Llama-3.2-1B"
    [decision] = event.decisions
    assert decision.trigger_id == trigger.id and decision.outcome == "fired"
    [execution_id] = event.executions
    execution = client.executions.wait(execution_id, timeout=30)
    assert execution.status == "succeeded", execution
    assert [s.status for s in execution.steps] == ["succeeded"] * 3
    deployments = [d for d in client.deployments.list() if d.name == "Llama-3.2-1B-auto"]
    assert len(deployments) == 1 and deployments[0].model_id == model.id
    assert deployments[0].cluster_id == "cluster_prod" and deployments[0].status == "running"
    slack = receiver.wait_for(
        lambda b: "Deployed Llama-3.2-1B successfully" in b["text"], path="/slack"
    )
    assert slack["text"].endswith("Deployed Llama-3.2-1B successfully")
    # the deployment emitted deployment.created, caused by this execution
    created = wait_event(
        client, "deployment.created", lambda e: e.data.get("deployment_name") == "Llama-3.2-1B-auto"
    )
    assert created.causation_id == execution_id and created.depth == 1

    # A local model, or one without auto_deploy, starts nothing; the event says why.
    local = client.models.add("Local-Model", source="local", auto_deploy=True)
    manual = client.models.add("Manual-Model", source="hugging_face", auto_deploy=False)
    for m, field in ((local, "model_source"), (manual, "auto_deploy")):
        ev = wait_event(client, "model.added", lambda e, m=m: e.data.get("model_id") == m.id)
        assert ev.executions == []
        [d] = ev.decisions
        assert d.outcome == "filtered" and field in (d.reason or ""), d
    assert len(list(client.deployments.list())) == 1


def test_failure_alert_pipeline(server: BudProcess, receiver: HttpReceiver) -> None:
    client = BudClient()
    # -- the spec's code, as written ---------------------------------------------------------
    pipeline = client.pipelines.create(
        name="Deployment Failure Alerts",
        definition={
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
                        "message": "🚨 Deployment {{ event.deployment_name }} failed: {{ event.error_message }}",  # noqa: E501
                        "channel": "slack",
                        "priority": "high",
                    },
                },
            ]
        },
    )

    trigger = client.event_triggers.create(
        pipeline_id=pipeline.id,
        event_type="deployment.failed",
        enabled=True,
    )
    # -----------------------------------------------------------------------------------------
    # A deployment to an unhealthy cluster cannot be placed: the platform emits deployment.failed.
    client.clusters.create(
        name="Staging", id="cluster_sick", environment="staging", status="unhealthy"
    )
    model = client.models.add("Mistral-7B", source="hugging_face")
    deployment = client.deployments.create(
        model_id=model.id, cluster_id="cluster_sick", deployment_name="mistral-staging"
    )
    assert deployment.status == "failed" and "unhealthy" in (deployment.error_message or "")
    event = wait_event(
        client, "deployment.failed", lambda e: e.data["deployment_id"] == deployment.id
    )
    assert event.decisions[0].trigger_id == trigger.id
    execution = client.executions.wait(event.executions[0], timeout=30)
    assert execution.status == "succeeded"
    log_step = execution.steps[0]
    assert log_step.outputs == {"message": f"Deployment failed: {deployment.id}", "level": "error"}
    alert = receiver.wait_for(lambda b: "mistral-staging" in b["text"], path="/slack")
    assert f"🚨 Deployment mistral-staging failed: {deployment.error_message}" in alert["text"]

    # marking a running deployment failed emits deployment.failed too
    client.clusters.create(name="Production", id="cluster_prod", environment="production")
    ok = client.deployments.create(
        model_id=model.id, cluster_id="cluster_prod", deployment_name="mistral-prod"
    )
    assert ok.status == "running"
    client.deployments.update(ok.id, status="failed", error_message="OOMKilled")
    alert = receiver.wait_for(lambda b: "mistral-prod" in b["text"], path="/slack")
    assert "🚨 Deployment mistral-prod failed: OOMKilled" in alert["text"]


def test_trigger_examples_filters_and_management(server: BudProcess) -> None:
    http = httpx.Client(base_url=server.url)
    steps = {
        "steps": [{"id": "log", "action": "log", "params": {"message": "{{ event.event_type }}"}}]
    }
    for pid in ("pipe_abc123", "pipe_monitoring"):
        assert (
            http.post(
                "/v1/pipelines", json={"id": pid, "name": pid, "definition": steps}
            ).status_code
            == 201
        )

    # -- "Using the SDK", as written ----------------------------------------------------------
    client = BudClient()

    # Create event trigger
    trigger = client.event_triggers.create(
        pipeline_id="pipe_abc123",
        event_type="model.added",
        filter={"model_source": "hugging_face"},
        enabled=True,
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print(f"Event trigger created: {trigger.id}")
    assert out.getvalue() == f"Event trigger created: {trigger.id}\n" and trigger.id.startswith(
        "trig_"
    )

    # -- "Event filtering", as written ----------------------------------------------------------
    # Only trigger for production deployments
    trigger = client.event_triggers.create(
        pipeline_id="pipe_monitoring",
        event_type="deployment.created",
        filter={"environment": "production", "cluster_id": "cluster_prod"},
    )
    assert trigger.enabled is True
    prod = client.events.publish(
        "deployment.created",
        {
            "deployment_id": "dep_1",
            "deployment_name": "a",
            "model_id": "m",
            "cluster_id": "cluster_prod",
            "environment": "production",
        },
    )
    staging = client.events.publish(
        "deployment.created",
        {
            "deployment_id": "dep_2",
            "deployment_name": "b",
            "model_id": "m",
            "cluster_id": "cluster_prod",
            "environment": "staging",
        },
    )
    assert len(client.events.get(prod.event_id).executions) == 1
    staged = client.events.get(staging.event_id)
    assert staged.executions == [] and "environment" in staged.decisions[0].reason

    # -- "Managing event triggers", as written ---------------------------------------------------
    assert (
        http.post(
            "/v1/event-triggers",
            json={
                "id": "trig_xyz789",
                "pipeline_id": "pipe_abc123",
                "event_type": "deployment.created",
                "filter": {"environment": "staging"},
            },
        ).status_code
        == 201
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        # List all triggers: get all event triggers for a pipeline
        triggers = client.event_triggers.list(pipeline_id="pipe_abc123")
        for trigger in triggers:
            print(f"{trigger.event_type}: {trigger.enabled}")

        # Disable a trigger (temporarily)
        client.event_triggers.disable(trigger_id="trig_xyz789")

        # Update filter conditions
        client.event_triggers.update(
            trigger_id="trig_xyz789",
            filter={"environment": "production", "priority": "high"},
        )
    assert sorted(out.getvalue().splitlines()) == ["deployment.created: True", "model.added: True"]
    updated = client.event_triggers.get("trig_xyz789")
    assert updated.enabled is False
    assert updated.filter == {"environment": "production", "priority": "high"}

    # A disabled trigger starts nothing, and the event says so.
    ev = client.events.publish(
        "deployment.created",
        {
            "deployment_id": "dep_3",
            "deployment_name": "c",
            "model_id": "m",
            "cluster_id": "cluster_x",
            "environment": "production",
            "priority": "high",
        },
    )
    got = client.events.get(ev.event_id)
    by_trigger = {d.trigger_id: d for d in got.decisions}
    assert by_trigger["trig_xyz789"].outcome == "disabled" and got.executions == []

    # The same event published twice starts one execution.
    first = client.events.publish(
        "model.added",
        {"model_id": "m9", "model_name": "x", "model_source": "hugging_face"},
        event_id="evt_abc123",
    )
    second = client.events.publish(
        "model.added",
        {"model_id": "m9", "model_name": "x", "model_source": "hugging_face"},
        event_id="evt_abc123",
    )
    assert first.duplicate is False and second.duplicate is True
    assert len(list(client.executions.list(event_id="evt_abc123"))) == 1

    with pytest.raises(NotFoundError, match="pipe_missing"):
        client.event_triggers.create(pipeline_id="pipe_missing", event_type="model.added")


def test_event_data_access_with_email_recipients(server: BudProcess, mailbox: MailBox) -> None:
    client = BudClient()
    pipeline = client.pipelines.create(
        name="Tell the team",
        definition={
            "steps": [
                {
                    "id": "notify",
                    "action": "notification",
                    "params": {
                        "message": "Model {{ event.model_name }} was added",
                        "recipients": ["team@example.com"],
                    },
                }
            ]
        },
    )
    client.event_triggers.create(pipeline_id=pipeline.id, event_type="model.added")
    # the spec's event data structure, published as is
    event = client.events.publish_many(
        [
            {
                "event_type": "model.added",
                "event_id": "evt_abc123",
                "timestamp": "2024-01-29T12:00:00Z",
                "source": "budmodel",
                "data": {
                    "model_id": "model_xyz789",
                    "model_name": "Llama-3.2-1B",
                    "model_source": "hugging_face",
                    "created_by": "user@example.com",
                },
            }
        ]
    )[0]
    assert event.event_id == "evt_abc123" and event.timestamp == "2024-01-29T12:00:00Z"
    execution = client.executions.wait(client.events.get("evt_abc123").executions[0], timeout=30)
    assert execution.status == "succeeded", execution
    [mail] = mailbox.wait_for(1)
    assert mail["to"] == ["team@example.com"]
    assert "Model Llama-3.2-1B was added" in mail["message"].get_content()
    [delivery] = [d for d in client.deliveries.list(execution_id=execution.id)]
    assert delivery.channel == "email" and delivery.status == "delivered"
