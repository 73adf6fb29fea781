"""Flow control per trigger: every suppressed event carries its decision and reason."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bud import BudClient

LOG = {"steps": [{"id": "a", "action": "log", "params": {"message": "{{ event.model_id }}"}}]}
SLOW = {"steps": [{"id": "a", "action": "delay", "params": {"seconds": 0.6}}]}


def trigger(
    client: BudClient,
    flow: dict[str, Any],
    definition: dict[str, Any] = LOG,
    event_type: str = "model.added",
) -> Any:
    pipeline = client.pipelines.create(name="flow", definition=definition)
    return client.event_triggers.create(pipeline_id=pipeline.id, event_type=event_type, flow=flow)


def publish(client: BudClient, model_id: str, **data: Any) -> Any:
    event = client.events.publish("model.added", {"model_id": model_id, **data})
    return client.events.get(event.event_id)


def decision(event: Any) -> Any:
    [d] = event.decisions
    return d


def test_dedup_key_within_a_window(app_client: BudClient) -> None:
    trig = trigger(app_client, {"dedup": {"key": "{{ event.model_id }}", "window_seconds": 60}})
    first, second, other = (
        publish(app_client, "m1"),
        publish(app_client, "m1"),
        publish(app_client, "m2"),
    )
    assert decision(first).outcome == "fired" and decision(other).outcome == "fired"
    d = decision(second)
    assert d.outcome == "suppressed" and d.reason_code == "deduplicated"
    assert first.event_id in d.reason and "60s dedup window" in d.reason and second.executions == []
    assert app_client.event_triggers.get(trig.id).fire_count == 2


def test_rate_limit_drops_and_records_the_excess(app_client: BudClient) -> None:
    trigger(app_client, {"rate_limit": {"max": 2, "per_seconds": 60}})
    events = [publish(app_client, f"m{i}") for i in range(4)]
    outcomes = [decision(e).outcome for e in events]
    assert outcomes == ["fired", "fired", "suppressed", "suppressed"]
    assert all("rate limit of 2 per 60s" in decision(e).reason for e in events[2:])
    batch = app_client.events.publish_many(
        [{"event_type": "model.added", "data": {"model_id": f"b{i}"}} for i in range(3)]
    )
    assert all(
        decision(app_client.events.get(e.event_id)).reason_code == "rate_limited" for e in batch
    )


def test_debounce_last_event_wins(app_client: BudClient) -> None:
    trigger(app_client, {"debounce": {"seconds": 0.6, "key": "{{ event.cluster }}"}})
    a = publish(app_client, "m1", cluster="c1")
    b = publish(app_client, "m2", cluster="c1")
    other = publish(app_client, "m3", cluster="c2")
    assert decision(b).outcome == "debounced" and decision(other).outcome == "debounced"
    superseded = decision(app_client.events.get(a.event_id))
    assert superseded.outcome == "suppressed" and superseded.reason_code == "superseded"
    assert b.event_id in superseded.reason
    deadline = time.monotonic() + 10
    while (
        "debounced"
        in (
            decision(app_client.events.get(b.event_id)).outcome,
            decision(app_client.events.get(other.event_id)).outcome,
        )
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    fired = app_client.events.get(b.event_id)
    assert decision(fired).outcome == "fired" and len(fired.executions) == 1
    execution = app_client.executions.wait(fired.executions[0])
    assert execution.steps[0].outputs["message"] == "m2"  # the last event's data
    assert decision(app_client.events.get(other.event_id)).outcome == "fired"  # its own key
    assert app_client.events.get(a.event_id).executions == []


def test_concurrency_skip(app_client: BudClient) -> None:
    trigger(app_client, {"concurrency": {"policy": "skip", "key": "{{ event.model_id }}"}}, SLOW)
    first, second, other = (
        publish(app_client, "m1"),
        publish(app_client, "m1"),
        publish(app_client, "m2"),
    )
    assert decision(first).outcome == "fired" and decision(other).outcome == "fired"
    d = decision(second)
    assert d.outcome == "suppressed" and d.reason_code == "concurrency_skip"
    assert first.executions[0] in d.reason
    app_client.executions.wait(first.executions[0])
    assert decision(publish(app_client, "m1")).outcome == "fired"  # the first one finished


def test_concurrency_queue_runs_one_after_another(app_client: BudClient) -> None:
    trigger(app_client, {"concurrency": {"policy": "queue"}}, SLOW)
    first, second = publish(app_client, "m1"), publish(app_client, "m2")
    assert decision(second).outcome == "fired" and "queued" in decision(second).reason
    a = app_client.executions.wait(first.executions[0])
    b = app_client.executions.wait(second.executions[0])
    assert a.status == b.status == "succeeded"
    assert b.steps[0].started_at >= a.steps[0].finished_at


def test_concurrency_cancel_previous(app_client: BudClient) -> None:
    trigger(
        app_client,
        {"concurrency": {"policy": "cancel_previous", "key": "{{ event.model_id }}"}},
        SLOW,
    )
    first = publish(app_client, "m1")
    second = publish(app_client, "m1")
    old = app_client.executions.wait(first.executions[0])
    assert old.status == "cancelled" and second.event_id in old.error
    assert app_client.executions.wait(second.executions[0]).status == "succeeded"


def test_circuit_breaker_trips_and_emits_an_event(app_client: BudClient) -> None:
    alerts = app_client.pipelines.create(
        name="alerts",
        definition={
            "steps": [
                {"id": "a", "action": "log", "params": {"message": "tripped: {{ event.reason }}"}}
            ]
        },
    )
    app_client.event_triggers.create(pipeline_id=alerts.id, event_type="trigger.tripped")
    trig = trigger(app_client, {"circuit_breaker": {"max_fires": 3, "window_seconds": 60}})
    events = [publish(app_client, f"m{i}") for i in range(5)]
    assert [decision(e).outcome for e in events] == ["fired"] * 3 + ["suppressed", "disabled"]
    assert decision(events[3]).reason_code == "circuit_open"
    tripped = app_client.event_triggers.get(trig.id)
    assert tripped.enabled is False and "more than 3 fires in 60s" in tripped.tripped_reason
    [alert] = list(app_client.events.list(event_type="trigger.tripped"))
    assert alert.data["trigger_id"] == trig.id
    alert = app_client.events.get(alert.event_id)
    assert decision(alert).outcome == "fired"
    re_enabled = app_client.event_triggers.enable(trig.id)
    assert re_enabled.enabled and re_enabled.tripped_reason is None
    assert decision(publish(app_client, "again")).outcome == "fired"


def test_chain_depth_limit_stops_a_loop(app_client: BudClient) -> None:
    # model.added -> deploy -> deployment.created -> a pipeline that adds a model -> model.added ...
    app_client.clusters.create(name="prod", id="cluster_prod")
    deploy = app_client.pipelines.create(
        name="deploy",
        definition={
            "steps": [
                {
                    "id": "d",
                    "action": "deployment_create",
                    "params": {
                        "model_id": "{{ event.model_id }}",
                        "cluster_id": "cluster_prod",
                        "deployment_name": "{{ event.model_name }}-{{ event.depth }}",
                    },
                }
            ]
        },
    )
    app_client.event_triggers.create(pipeline_id=deploy.id, event_type="model.added")
    adder = app_client.pipelines.create(
        name="adds a model",
        definition={
            "steps": [
                {
                    "id": "add",
                    "action": "model_add",
                    "params": {"name": "copy-of-{{ event.model_name }}", "source": "hugging_face"},
                }
            ]
        },
    )
    app_client.event_triggers.create(pipeline_id=adder.id, event_type="deployment.created")
    origin = app_client.models.add("Loop", source="hugging_face")

    deadline = time.monotonic() + 30
    stopped = None
    while stopped is None and time.monotonic() < deadline:
        for event in app_client.events.list():
            if event.depth > 8:
                stopped = app_client.events.get(event.event_id)
        time.sleep(0.2)
    assert stopped is not None, "the chain never reached the depth limit"
    d = decision(stopped)
    assert d.outcome == "suppressed" and d.reason_code == "chain_depth"
    assert "depth 9 exceeds the limit of 8" in d.reason and stopped.executions == []
    chain = sorted(
        (
            e
            for e in app_client.events.list()
            if e.event_type in ("model.added", "deployment.created")
        ),
        key=lambda e: e.depth,
    )
    assert [e.depth for e in chain] == list(range(10))
    first = chain[0]
    assert first.data["model_id"] == origin.id
    assert all(e.correlation_id == first.event_id for e in chain)
    assert all(e.causation_id and e.causation_id.startswith("exe_") for e in chain[1:])
    time.sleep(0.5)
    # The chain and cluster.ready, nothing past it (besides the executions' lifecycle events).
    platform = [e for e in app_client.events.list() if not e.event_type.startswith("execution.")]
    assert len(platform) == 11


@pytest.mark.parametrize(
    ("flow", "path"),
    [
        ({"rate_limit": {"max": 0, "per_seconds": 60}}, "flow.rate_limit.max"),
        ({"debounce": {}}, "flow.debounce"),
        ({"concurrency": {"policy": "sometimes"}}, "flow.concurrency.policy"),
        ({"dedup": {"window_seconds": 5, "key": "{{ event.x "}}, "flow.dedup.key"),
        ({"retry": {}}, "flow"),
    ],
)
def test_bad_flow_is_refused_with_its_path(
    app_client: BudClient, flow: dict[str, Any], path: str
) -> None:
    from bud import ValidationError

    pipeline = app_client.pipelines.create(name="x", definition=LOG)
    with pytest.raises(ValidationError) as info:
        app_client.event_triggers.create(
            pipeline_id=pipeline.id, event_type="model.added", flow=flow
        )
    assert info.value.details["path"] == path
