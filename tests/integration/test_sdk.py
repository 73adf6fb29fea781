"""The SDK against the real app in process: the product document's examples, errors, paging.

Every method of both clients is exercised in tests/integration/test_sdk_methods.py.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import bud
from bud import (
    AuthenticationError,
    BudClient,
    ConflictError,
    FilterError,
    NotFoundError,
    TransportError,
    ValidationError,
    WaitTimeout,
)
from bud.settings import Settings
from tests.support import RECEIVERS_ALLOW, HttpReceiver, free_port

with warnings.catch_warnings():
    # starlette warns at import when it finds httpx rather than httpx2; nothing to act on here.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

# The product document's two example definitions, as it writes them.
AUTO_DEPLOY: dict[str, Any] = {
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
}
FAILURE_ALERTS: dict[str, Any] = {
    "steps": [
        {
            "id": "log_failure",
            "action": "log",
            "params": {"message": "Deployment failed: {{ event.deployment_id }}", "level": "error"},
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
}
LOG_ONLY = {
    "steps": [
        {
            "id": "say",
            "action": "log",
            "params": {"message": "got {{ event.model_name | default('?') }}"},
        }
    ]
}


def _settings(tmp_path: Path, **changes: Any) -> Settings:
    base = Settings(
        data_dir=tmp_path / "data",
        poll_seconds=0.2,
        health_probe_seconds=0.5,
        outbound_allow=RECEIVERS_ALLOW,
    )
    return base.model_copy(update=changes)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[BudClient]:
    """The sync SDK over a Starlette TestClient (the lifespan starts the engine)."""
    from bud.server.app import create_app

    app = create_app(_settings(tmp_path), check_responses=True)
    with TestClient(app, base_url="http://localhost") as http, BudClient(http_client=http) as sdk:
        yield sdk


@pytest.fixture
def slack() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


def _model_added_data(**extra: Any) -> dict[str, Any]:
    return {
        "model_id": "model_xyz789",
        "model_name": "Llama-3.2-1B",
        "model_source": "hugging_face",
        "created_by": "user@example.com",
        **extra,
    }


# ---------------------------------------------------------------------------------------------
# The product document, as written


def test_spec_auto_deploy_example(client: BudClient, slack: HttpReceiver) -> None:
    client.channels.set("slack", url=slack.url)
    client.clusters.create("Production", id="cluster_prod", environment="production")

    pipeline = client.pipelines.create(name="Auto-Deploy New Models", definition=AUTO_DEPLOY)
    trigger = client.event_triggers.create(
        pipeline_id=pipeline.id,
        event_type="model.added",
        filter={"model_source": "hugging_face", "auto_deploy": True},
        enabled=True,
    )
    assert trigger.id.startswith("trig_")
    assert trigger.event_type == "model.added"
    assert trigger.enabled is True
    assert trigger.filter == {"model_source": "hugging_face", "auto_deploy": True}

    skipped = client.models.add("Mistral-7B", "hugging_face", auto_deploy=False)
    model = client.models.add(
        "Llama-3.2-1B", "hugging_face", created_by="user@example.com", auto_deploy=True
    )
    assert model.metadata == {"auto_deploy": True}
    assert model.created_by == "user@example.com"

    execution = _wait_for_execution(client, pipeline_id=pipeline.id)
    done = client.executions.wait(execution.id, timeout=20)
    assert done.status == "succeeded", done.error
    assert done.steps is not None
    assert [s.status for s in done.steps] == ["succeeded"] * 3
    deploy = next(s for s in done.steps if s.step_id == "deploy")
    assert deploy.params["deployment_name"] == "Llama-3.2-1B-auto"
    assert deploy.params["model_id"] == model.id

    deployments = list(client.deployments.list(model_id=model.id))
    assert [d.name for d in deployments] == ["Llama-3.2-1B-auto"]
    assert list(client.deployments.list(model_id=skipped.id)) == []
    slack.wait_for(lambda body: "Deployed Llama-3.2-1B successfully" in json.dumps(body))

    # The event that started it records every candidate trigger's decision.
    event = client.events.get(execution.event_id or "")
    assert event.executions == [execution.id]
    assert event.decisions is not None
    assert [(d.trigger_id, d.outcome) for d in event.decisions] == [(trigger.id, "fired")]


def test_spec_failure_alert_example(client: BudClient, slack: HttpReceiver) -> None:
    client.channels.set("slack", url=slack.url)
    pipeline = client.pipelines.create(name="Deployment Failure Alerts", definition=FAILURE_ALERTS)
    trigger = client.event_triggers.create(
        pipeline_id=pipeline.id, event_type="deployment.failed", enabled=True
    )
    assert trigger.filter == {}

    client.clusters.create("Production", id="cluster_prod", environment="production")
    model = client.models.add("Llama-3.2-1B", "hugging_face")
    deployment = client.deployments.create(model.id, "cluster_prod", "llama-prod")
    client.deployments.update(deployment.id, status="failed", error_message="out of memory")

    execution = _wait_for_execution(client, pipeline_id=pipeline.id)
    done = client.executions.wait(execution.id, timeout=20)
    assert done.status == "succeeded", done.error
    body = slack.wait_for(lambda b: "out of memory" in json.dumps(b, ensure_ascii=False))
    assert "🚨 Deployment llama-prod failed: out of memory" in json.dumps(body, ensure_ascii=False)


def test_spec_managing_triggers(client: BudClient) -> None:
    pipeline = client.pipelines.create(name="monitoring", definition=LOG_ONLY)
    created = client.event_triggers.create(
        pipeline_id=pipeline.id,
        event_type="deployment.created",
        filter={"environment": "production", "cluster_id": "cluster_prod"},
    )
    other = client.event_triggers.create(
        pipeline_id=pipeline.id, event_type="model.added", filter={"model_source": "hugging_face"}
    )

    triggers = client.event_triggers.list(pipeline_id=pipeline.id)
    seen = {f"{t.event_type}: {t.enabled}" for t in triggers}
    assert seen == {"deployment.created: True", "model.added: True"}

    disabled = client.event_triggers.disable(trigger_id=created.id)
    assert disabled.enabled is False
    assert [t.id for t in client.event_triggers.list(enabled=False)] == [created.id]

    updated = client.event_triggers.update(
        trigger_id=created.id,
        filter={"environment": "production", "priority": "high"},
    )
    assert updated.filter == {"environment": "production", "priority": "high"}
    assert updated.enabled is False  # only what was given changes

    renamed = client.event_triggers.update(other.id, name="hf models")
    assert renamed.name == "hf models"
    assert renamed.filter == {"model_source": "hugging_face"}
    cleared = client.event_triggers.update(other.id, filter={})
    assert cleared.filter == {}
    assert client.event_triggers.enable(created.id).enabled is True

    client.event_triggers.delete(other.id)
    with pytest.raises(NotFoundError):
        client.event_triggers.get(other.id)

    # Deleting a pipeline deletes its triggers.
    client.pipelines.delete(pipeline.id)
    with pytest.raises(NotFoundError):
        client.event_triggers.get(created.id)


# ---------------------------------------------------------------------------------------------
# Events and decisions


def test_publish_dedupes_and_explains_decisions(client: BudClient) -> None:
    pipeline = client.pipelines.create(name="hf", definition=LOG_ONLY)
    hf = client.event_triggers.create(
        pipeline.id, "model.added", filter={"model_source": "hugging_face"}
    )
    other = client.event_triggers.create(
        pipeline.id, "model.added", filter={"model_source": "ollama"}
    )

    first = client.events.publish(
        "model.added",
        _model_added_data(),
        source="budmodel",
        event_id="evt_abc123",
        timestamp=datetime(2024, 1, 29, 12, tzinfo=UTC),
    )
    assert first.event_id == "evt_abc123"
    assert first.duplicate is False
    assert first.source == "budmodel"
    assert first.timestamp.startswith("2024-01-29T12:00:00")
    again = client.events.publish("model.added", _model_added_data(), event_id="evt_abc123")
    assert again.duplicate is True

    event = client.events.get("evt_abc123")
    assert event.data["model_name"] == "Llama-3.2-1B"
    outcomes = {d.trigger_id: d for d in event.decisions or []}
    assert outcomes[hf.id].outcome == "fired"
    assert outcomes[other.id].outcome == "filtered"
    assert "model_source" in (outcomes[other.id].reason or "")
    assert len(event.executions or []) == 1
    assert [x.id for x in client.executions.list(event_id="evt_abc123")] == event.executions
    assert [x.id for x in client.executions.list(trigger_id=hf.id)] == event.executions

    generated = client.events.publish("model.added", _model_added_data())
    assert generated.event_id.startswith("evt_")
    assert generated.event_id != "evt_abc123"


def test_test_events_and_trigger_test_fire_nothing(client: BudClient) -> None:
    pipeline = client.pipelines.create(name="p", definition=LOG_ONLY)
    trigger = client.event_triggers.create(
        pipeline.id, "model.added", filter={"model_source": "hugging_face", "auto_deploy": True}
    )

    verdict = client.event_triggers.test(
        trigger.id,
        {
            "event_type": "model.added",
            "data": _model_added_data(auto_deploy=False),
        },
    )
    assert verdict.would_fire is False
    assert verdict.matched is False
    assert "auto_deploy" in verdict.summary
    leaves = _leaves(verdict.verdict)
    assert {path.rsplit(".", 1)[-1]: leaf["matched"] for path, leaf in leaves.items()} == {
        "model_source": True,
        "auto_deploy": False,
    }

    # Bare data is wrapped as {"data": ...}.
    bare = client.event_triggers.test(trigger.id, _model_added_data(auto_deploy=True))
    assert bare.would_fire is True

    published = client.events.publish("model.added", _model_added_data(auto_deploy=True), test=True)
    assert published.test is True
    assert list(client.executions.list(pipeline_id=pipeline.id)) == []
    assert client.event_triggers.get(trigger.id).fire_count == 0


def test_a_trigger_test_takes_a_partial_event_and_warns(client: BudClient) -> None:
    pipeline = client.pipelines.create(name="p", definition=LOG_ONLY)
    trigger = client.event_triggers.create(
        pipeline.id, "model.added", filter={"model_source": "hugging_face", "auto_deploy": True}
    )
    # Only the fields the filter reads: model_id, which the schema requires, is missing.
    partial = client.event_triggers.test(
        trigger.id, {"model_source": "hugging_face", "auto_deploy": True}
    )
    assert (partial.matched, partial.would_fire) == (True, True)
    assert partial.warnings == [
        "event.data: 'model_id' is a required property (schema of model.added)"
    ]
    wrong_type = client.event_triggers.test(
        trigger.id, {"data": {**_model_added_data(auto_deploy=True), "model_name": 7}}
    )
    assert wrong_type.warnings == [
        "event.data.model_name: 7 is not of type 'string' (schema of model.added)"
    ]
    assert client.event_triggers.test(trigger.id, _model_added_data()).warnings == []
    # The envelope is still checked.
    with pytest.raises(ValidationError) as info:
        client.event_triggers.test(trigger.id, {"event_type": "no.such", "data": {}})
    assert info.value.details["path"] == "event.event_type"
    with pytest.raises(ValidationError, match="timestamp"):
        client.event_triggers.test(trigger.id, {"data": {}, "timestamp": "yesterday"})


def _leaves(node: dict[str, Any]) -> dict[str, dict[str, Any]]:
    if "children" not in node:
        return {str(node.get("path")): node}
    out: dict[str, dict[str, Any]] = {}
    for child in node["children"]:
        out.update(_leaves(child))
    return out


def test_list_iterates_every_page_lazily(client: BudClient) -> None:
    events = [
        {
            "event_type": "model.added",
            "event_id": f"evt_page_{i:03d}",
            "data": _model_added_data(model_id=f"model_{i}"),
        }
        for i in range(230)
    ]
    accepted = client.events.publish_many(events)
    assert len(accepted) == 230
    assert all(isinstance(e, bud.Event) for e in accepted)

    ids = [e.event_id for e in client.events.list(event_type="model.added")]
    assert len(ids) == 230
    assert set(ids) == {e["event_id"] for e in events}

    pager = client.events.list(source="nobody")
    assert pager.to_list() == []
    assert pager.first() is None

    since = datetime.now(UTC) + timedelta(hours=1)
    assert list(client.events.list(since=since)) == []
    assert len(list(client.events.list(since="2000-01-01T00:00:00Z"))) == 230


def test_pager_follows_cursors_with_page_size_100() -> None:
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        query = dict(request.url.params)
        seen.append(query)
        start = int(query.get("cursor") or 0)
        items = [{"name": f"t{i}"} for i in range(start, min(start + 100, 250))]
        nxt = str(start + 100) if start + 100 < 250 else None
        return httpx.Response(200, json={"items": items, "next_cursor": nxt})

    with BudClient(base_url="http://bud.test", transport=httpx.MockTransport(handler)) as sdk:
        pager = sdk.event_types.list()
        assert seen == []  # nothing is fetched before iteration
        assert len([t.name for t in pager]) == 250
        assert [q.get("limit") for q in seen] == ["100", "100", "100"]
        assert [q.get("cursor") for q in seen] == [None, "100", "200"]

        seen.clear()
        assert len(list(pager)) == 250  # a pager can be iterated again, from the start
        assert pager.first() is not None

        seen.clear()
        assert len(list(sdk.secrets.list())) == 100  # one list, not paged: no cursor followed
        assert seen == [{}]


# ---------------------------------------------------------------------------------------------
# Executions


def test_wait_times_out_then_cancel_and_retry(client: BudClient) -> None:
    slow = client.pipelines.create(
        name="slow",
        definition={"steps": [{"id": "nap", "action": "delay", "params": {"seconds": 30}}]},
    )
    execution = client.pipelines.run(slow.id, params={"why": "test"})
    assert execution.pipeline_id == slow.id

    started = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        client.executions.wait(execution.id, timeout=0.5, poll_interval=0.05)
    assert time.monotonic() - started < 5
    assert isinstance(info.value, WaitTimeout)
    assert execution.id in str(info.value)

    cancelled = client.executions.cancel(execution.id)
    final = client.executions.wait(cancelled.id, timeout=10)
    assert final.status == "cancelled"
    with pytest.raises(ConflictError):
        client.executions.cancel(execution.id)

    retried = client.executions.retry(execution.id)
    assert retried.status in ("queued", "running")
    client.executions.cancel(retried.id)


def test_failed_execution_records_attempts(client: BudClient) -> None:
    pipeline = client.pipelines.create(
        name="doomed",
        definition={
            "steps": [
                {"id": "boom", "action": "fail", "params": {"message": "nope", "retryable": False}}
            ]
        },
    )
    execution = client.executions.wait(client.pipelines.run(pipeline.id).id, timeout=20)
    assert execution.status == "failed"
    assert "nope" in (execution.error or "")
    attempts = client.executions.attempts(execution.id)
    assert [a.step_id for a in attempts] == ["boom"]
    assert attempts[0].status == "failed"
    assert [x.id for x in client.executions.list(status="failed")] == [execution.id]


def test_run_with_event_renders_templates(client: BudClient) -> None:
    pipeline = client.pipelines.create(
        name="echo",
        definition={
            "steps": [
                {
                    "id": "out",
                    "action": "set_output",
                    "params": {"name": "{{ event.model_name }}", "n": "{{ params.n }}"},
                }
            ]
        },
    )
    run = client.pipelines.run(
        pipeline.id,
        params={"n": 3},
        event={"event_type": "model.added", "data": _model_added_data()},
    )
    done = client.executions.wait(run.id, timeout=20)
    assert done.status == "succeeded", done.error
    assert done.steps is not None
    assert done.steps[0].outputs == {"name": "Llama-3.2-1B", "n": 3}


# ---------------------------------------------------------------------------------------------
# Errors


def test_errors_are_typed_and_carry_the_servers_message(client: BudClient) -> None:
    with pytest.raises(NotFoundError) as missing:
        client.pipelines.get("pipe_missing")
    assert "pipe_missing" in missing.value.message

    pipeline = client.pipelines.create(name="p", definition=LOG_ONLY)
    with pytest.raises(FilterError) as bad_filter:
        client.event_triggers.create(
            pipeline.id, "model.added", filter={"model_size": {"$gt": ["big"]}}
        )
    assert bad_filter.value.path.startswith("filter.model_size")
    assert bad_filter.value.details["path"] == bad_filter.value.path
    assert isinstance(bad_filter.value, ValidationError)

    with pytest.raises(ValidationError) as unknown_type:
        client.event_triggers.create(pipeline.id, "no.such_type")
    assert "no.such_type" in unknown_type.value.message

    with pytest.raises(NotFoundError):
        client.event_triggers.create("pipe_missing", "model.added")

    with pytest.raises(ValidationError) as cyclic:
        client.pipelines.create(
            name="loop",
            definition={
                "steps": [
                    {"id": "a", "action": "log", "params": {"message": "a"}, "depends_on": ["b"]},
                    {"id": "b", "action": "log", "params": {"message": "b"}, "depends_on": ["a"]},
                ]
            },
        )
    assert "cycle" in cyclic.value.message.lower() or any(
        "cycle" in str(e).lower() for e in cyclic.value.details.get("errors", [])
    )

    result = client.pipelines.validate({"steps": [{"id": "x", "action": "no_such_action"}]})
    assert result.valid is False
    assert any("no_such_action" in e["message"] for e in result.errors)
    assert client.pipelines.validate(LOG_ONLY).valid is True


def test_unreachable_server_is_a_transport_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with BudClient(base_url=url, timeout=2) as sdk, pytest.raises(TransportError) as info:
        sdk.health()
    assert url in info.value.message
    assert "bud serve" in info.value.message


def test_environment_and_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    captured: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        return httpx.Response(200, json={"status": "ok"})

    monkeypatch.setenv("BUD_URL", "http://bud.example:9000/")
    monkeypatch.setenv("BUD_API_KEY", "sekret")
    with BudClient(transport=httpx.MockTransport(handler)) as sdk:
        assert sdk.base_url == "http://bud.example:9000"
        assert sdk.health() == {"status": "ok"}
    assert str(captured[0].url) == "http://bud.example:9000/healthz"
    assert captured[0].headers["authorization"] == "Bearer sekret"

    monkeypatch.delenv("BUD_URL")
    monkeypatch.delenv("BUD_API_KEY")
    with BudClient(transport=httpx.MockTransport(handler)) as sdk:
        assert sdk.base_url == "http://127.0.0.1:8010"
        sdk.health()
    assert "authorization" not in captured[-1].headers


def test_error_body_mapping_without_a_server() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/conflict"):
            return httpx.Response(
                409,
                json={
                    "error": {
                        "code": "conflict",
                        "message": "busy",
                        "details": {"state": "running"},
                    }
                },
            )
        if request.url.path.endswith("/plain"):
            return httpx.Response(503, text="upstream down")
        return httpx.Response(
            422,
            json={
                "error": {
                    "code": "invalid_filter",
                    "message": "filter.x.$gt: needs a number",
                    "details": {"path": "filter.x.$gt"},
                }
            },
        )

    with BudClient(base_url="http://bud.test", transport=httpx.MockTransport(handler)) as sdk:
        with pytest.raises(ConflictError) as conflict:
            sdk.request("POST", "/v1/conflict")
        assert conflict.value.message == "busy"
        assert conflict.value.details == {"state": "running"}
        with pytest.raises(bud.ServerError) as plain:
            sdk.request("GET", "/v1/plain")
        assert "upstream down" in plain.value.message
        with pytest.raises(FilterError) as flt:
            sdk.request("GET", "/v1/filter")
        assert flt.value.message == "filter.x.$gt: needs a number"
        assert flt.value.path == "filter.x.$gt"


def test_api_keys_are_enforced(tmp_path: Path) -> None:
    from bud.server.app import create_app

    app = create_app(_settings(tmp_path, api_keys=("k-1",)), check_responses=True)
    with TestClient(app, base_url="http://localhost") as http:
        with BudClient(http_client=http, api_key="wrong") as sdk:
            assert sdk.health()["status"] == "ok"  # /healthz is open
            with pytest.raises(AuthenticationError):
                list(sdk.pipelines.list())
        with BudClient(http_client=http, api_key="k-1") as sdk:
            assert list(sdk.pipelines.list()) == []


# ---------------------------------------------------------------------------------------------
# The platform


def test_platform_resources(client: BudClient) -> None:
    cluster = client.clusters.create("Production", id="cluster_prod", environment="production")
    assert (cluster.id, cluster.status) == ("cluster_prod", "ready")
    assert [c.id for c in client.clusters.list()] == ["cluster_prod"]

    unhealthy = client.clusters.update("cluster_prod", status="unhealthy", reason="disk full")
    assert unhealthy.status == "unhealthy"
    events = list(client.events.list(event_type="cluster.unhealthy"))
    assert events and events[0].data["cluster_id"] == "cluster_prod"
    assert events[0].data["previous_status"] == "ready"

    model = client.models.add(
        "Llama-3.2-1B", "hugging_face", uri="hf://meta/llama", auto_deploy=True
    )
    assert client.models.get(model.id).uri == "hf://meta/llama"
    added = list(client.events.list(event_type="model.added"))
    assert added[0].data["model_id"] == model.id
    assert added[0].data["auto_deploy"] is True

    changed = client.models.update(model.id, auto_deploy=False)
    assert changed.metadata["auto_deploy"] is False
    assert list(client.events.list(event_type="model.updated"))

    failed = client.deployments.create(model.id, "cluster_prod", "llama")
    assert failed.status == "failed"  # the cluster is unhealthy
    assert failed.error_message
    assert [d.id for d in client.deployments.list(status="failed")] == [failed.id]
    assert client.deployments.get(failed.id).name == "llama"

    client.deployments.delete(failed.id)
    client.models.delete(model.id)
    client.clusters.delete("cluster_prod")
    assert list(client.models.list()) == []
    with pytest.raises(NotFoundError):
        client.clusters.get("cluster_prod")


def test_catalog_channels_secrets(client: BudClient) -> None:
    names = {t.name for t in client.event_types.list()}
    assert {
        "model.added",
        "model.updated",
        "deployment.created",
        "deployment.failed",
        "cluster.ready",
        "cluster.unhealthy",
    } <= names
    assert client.event_types.get("model.added").builtin is True

    custom = client.event_types.register(
        "team.thing_happened",
        description="a team event",
        schema={"type": "object", "properties": {"what": {"type": "string"}}},
        example={"what": "it"},
    )
    assert custom.schema_["properties"]["what"]["type"] == "string"
    assert client.event_types.get("team.thing_happened").example == {"what": "it"}

    actions = {a.name for a in client.actions.list()}
    assert {"log", "notification", "cluster_health", "deployment_create"} <= actions
    assert client.actions.get("log").params_schema["required"] == ["message"]

    hook = client.channels.set("webhook", url="https://user:pw@hooks.example/x")
    assert "pw" not in json.dumps(hook.config)
    mail = client.channels.set("email", smtp_url="smtp://localhost:2525", from_="bud@example")
    assert mail.config["from"] == "bud@example"
    assert {c.name for c in client.channels.list()} >= {"webhook", "email"}
    client.channels.delete("webhook")
    assert "webhook" not in {c.name for c in client.channels.list() if c.source == "api"}

    client.secrets.set("token", "s3cret")
    listed = list(client.secrets.list())
    assert [s.name for s in listed] == ["token"]
    assert "s3cret" not in json.dumps([s.model_dump() for s in listed])
    client.secrets.delete("token")
    assert list(client.secrets.list()) == []
    assert list(client.deliveries.list()) == []


def test_demo_loader_is_idempotent(client: BudClient) -> None:
    from bud.cli.demo import load_demo
    from bud.demo import DEMO_PIPELINES

    first = load_demo(client)
    assert set(first["pipelines"]) == {p["name"] for p in DEMO_PIPELINES}
    assert first["cluster"] == "cluster_prod"
    assert len(first["created"]) == 1 + 2 * len(DEMO_PIPELINES)  # the cluster, pipes, triggers
    second = load_demo(client)
    assert second["created"] == []
    assert second["pipelines"] == first["pipelines"]
    assert second["triggers"] == first["triggers"]

    auto = client.pipelines.get(first["pipelines"]["Auto-Deploy New Models"])
    assert auto.definition == AUTO_DEPLOY
    alerts = client.pipelines.get(first["pipelines"]["Deployment Failure Alerts"])
    assert alerts.definition == FAILURE_ALERTS
    trigger = client.event_triggers.get(first["triggers"]["Auto-Deploy New Models"])
    assert trigger.filter == {"model_source": "hugging_face", "auto_deploy": True}
    assert client.clusters.get("cluster_prod").environment == "production"


def test_on_each_store_backend(app_client: BudClient) -> None:
    """The conftest's app_client runs on SQLite and, when available, PostgreSQL."""
    pipeline = app_client.pipelines.create(name="p", definition=LOG_ONLY)
    app_client.event_triggers.create(pipeline.id, "model.added")
    app_client.events.publish("model.added", _model_added_data())
    execution = _wait_for_execution(app_client, pipeline_id=pipeline.id)
    assert app_client.executions.wait(execution.id, timeout=20).status == "succeeded"


# ---------------------------------------------------------------------------------------------


def _wait_for_execution(client: BudClient, pipeline_id: str, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = client.executions.list(pipeline_id=pipeline_id).first()
        if found is not None:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no execution of {pipeline_id} started")
