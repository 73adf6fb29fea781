"""The engine through the SDK, in process, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from bud import BudClient, ConflictError
from tests.support import HttpReceiver


def run(
    client: BudClient,
    steps: list[dict[str, Any]],
    *,
    params: dict[str, Any] | None = None,
    event: dict[str, Any] | None = None,
    timeout: float = 20,
    **extra: Any,
) -> Any:
    pipeline = client.pipelines.create(name="t", definition={"steps": steps, **extra})
    execution = client.pipelines.run(pipeline.id, params=params, event=event)
    return client.executions.wait(execution.id, timeout=timeout)


def steps_by_id(execution: Any) -> dict[str, Any]:
    return {s.step_id: s for s in execution.steps}


def test_outputs_flow_to_later_steps_with_types(app_client: BudClient) -> None:
    done = run(
        app_client,
        [
            {
                "id": "a",
                "action": "set_output",
                "params": {"n": "{{ event.replicas }}", "name": "{{ event.model_name }}"},
            },
            {
                "id": "b",
                "action": "set_output",
                "params": {
                    "twice": "{{ steps.a.outputs.n * 2 }}",
                    "text": "{{ steps.a.outputs.name }}-x",
                    "envelope": "{{ event.event_type }}/{{ event.data.model_name }}",
                    "region": "{{ event.region | default('us-east-1') }}",
                },
                "depends_on": ["a"],
            },
        ],
        event={
            "event_type": "model.added",
            "data": {"model_id": "m", "model_name": "Llama", "replicas": 3},
        },
    )
    assert done.status == "succeeded"
    b = steps_by_id(done)["b"]
    assert b.outputs == {
        "twice": 6,
        "text": "Llama-x",
        "envelope": "model.added/Llama",
        "region": "us-east-1",
    }
    assert steps_by_id(done)["a"].outputs["n"] == 3  # a lone expression keeps its type


def test_missing_template_value_fails_the_step_naming_the_path(app_client: BudClient) -> None:
    done = run(
        app_client,
        [{"id": "a", "action": "log", "params": {"message": "{{ event.region }}"}}],
        event={"event_type": "model.added", "data": {"model_id": "m"}},
    )
    assert done.status == "failed"
    step = done.steps[0]
    assert step.status == "failed" and "event.region" in step.error
    assert "event.region" in done.error and step.attempts == 1


def test_independent_steps_run_in_parallel(app_client: BudClient) -> None:
    steps = [{"id": f"s{i}", "action": "delay", "params": {"seconds": 0.5}} for i in range(4)]
    done = run(app_client, steps)
    assert done.status == "succeeded"
    # Every step started before any of them finished: they ran at the same time.
    assert max(s.started_at for s in done.steps) < min(s.finished_at for s in done.steps)


def test_max_parallel_steps_bounds_the_parallelism(app_client: BudClient) -> None:
    steps = [{"id": f"s{i}", "action": "delay", "params": {"seconds": 0.3}} for i in range(4)]
    done = run(app_client, steps, max_parallel_steps=1)
    assert done.status == "succeeded"
    spans = sorted((s.started_at, s.finished_at) for s in done.steps)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end  # one at a time


def test_condition_skips_and_dependents_still_run(app_client: BudClient) -> None:
    done = run(
        app_client,
        [
            {"id": "check", "action": "set_output", "params": {"deploy": False}},
            {
                "id": "deploy",
                "action": "log",
                "params": {"message": "deploying"},
                "condition": "{{ steps.check.outputs.deploy }}",
                "depends_on": ["check"],
            },
            {
                "id": "after",
                "action": "log",
                "params": {"message": "done"},
                "depends_on": ["deploy"],
            },
        ],
    )
    assert done.status == "succeeded"
    s = steps_by_id(done)
    assert s["deploy"].status == "skipped" and s["after"].status == "succeeded"


def test_failure_fails_the_execution_and_cancels_the_rest(app_client: BudClient) -> None:
    done = run(
        app_client,
        [
            {"id": "boom", "action": "fail", "params": {"message": "no capacity"}},
            {"id": "next", "action": "log", "params": {"message": "x"}, "depends_on": ["boom"]},
        ],
    )
    assert done.status == "failed" and "no capacity" in done.error and "boom" in done.error
    s = steps_by_id(done)
    assert s["boom"].status == "failed" and s["next"].status == "cancelled"


def test_on_failure_continue(app_client: BudClient) -> None:
    done = run(
        app_client,
        [
            {
                "id": "boom",
                "action": "fail",
                "params": {"message": "meh", "retryable": False},
                "on_failure": "continue",
            },
            {
                "id": "next",
                "action": "log",
                "params": {"message": "{{ steps.boom.status }}"},
                "depends_on": ["boom"],
            },
        ],
    )
    assert done.status == "succeeded"
    s = steps_by_id(done)
    assert s["boom"].status == "failed" and s["next"].outputs["message"] == "failed"


def test_retry_with_backoff_until_the_receiver_recovers(app_client: BudClient) -> None:
    with HttpReceiver() as receiver:
        receiver.fail_first = 2
        done = run(
            app_client,
            [
                {
                    "id": "call",
                    "action": "http_request",
                    "params": {"url": f"{receiver.url}/hook", "method": "POST", "json": {"a": 1}},
                    "retry": {"max_attempts": 3, "backoff_seconds": 0.2},
                }
            ],
        )
        assert done.status == "succeeded"
        assert done.steps[0].attempts == 3 and len(receiver.requests) == 3
        attempts = app_client.executions.attempts(done.id)
        assert [a.status for a in attempts] == ["failed", "failed", "succeeded"]
        assert "500" in (attempts[0].error or "")
        # idempotency key is the same on every attempt
        keys = {r["headers"].get("Idempotency-Key") for r in receiver.requests}
        assert keys == {f"{done.id}:call"}


def test_step_timeout_and_pipeline_timeout(app_client: BudClient) -> None:
    done = run(
        app_client,
        [{"id": "slow", "action": "delay", "params": {"seconds": 5}, "timeout_seconds": 0.3}],
    )
    assert done.status == "failed" and "timed out after 0.3s" in done.steps[0].error
    done = run(
        app_client,
        [{"id": "slow", "action": "delay", "params": {"seconds": 5}}],
        timeout_seconds=0.5,
    )
    assert done.status == "failed" and "pipeline timed out" in done.error
    assert done.steps[0].status == "cancelled"


def test_cancel_and_retry(app_client: BudClient) -> None:
    pipeline = app_client.pipelines.create(
        name="c",
        definition={
            "steps": [
                {"id": "wait", "action": "delay", "params": {"seconds": "{{ params.seconds }}"}},
                {
                    "id": "after",
                    "action": "log",
                    "params": {"message": "ok"},
                    "depends_on": ["wait"],
                },
            ],
            "parameters": {"seconds": 5},
        },
    )
    execution = app_client.pipelines.run(pipeline.id)
    deadline = time.monotonic() + 5
    while (
        app_client.executions.get(execution.id).status != "running" and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    cancelled = app_client.executions.cancel(execution.id)
    assert cancelled.status == "cancelled"
    assert {s.status for s in cancelled.steps} == {"cancelled"}
    with pytest.raises(ConflictError):
        app_client.executions.cancel(execution.id)
    retried = app_client.executions.retry(execution.id)
    assert retried.status in ("queued", "running")
    app_client.executions.cancel(execution.id)
    # a run with params overrides the pipeline's parameters
    quick = app_client.pipelines.run(pipeline.id, params={"seconds": 0})
    assert app_client.executions.wait(quick.id, timeout=10).status == "succeeded"


def test_retry_resumes_only_what_failed(app_client: BudClient) -> None:
    with HttpReceiver() as receiver:
        receiver.fail_first = 1
        pipeline = app_client.pipelines.create(
            name="r",
            definition={
                "steps": [
                    {"id": "one", "action": "set_output", "params": {"v": 1}},
                    {
                        "id": "call",
                        "action": "http_request",
                        "params": {"url": receiver.url},
                        "depends_on": ["one"],
                        "retry": {"max_attempts": 1},
                    },
                ]
            },
        )
        failed = app_client.executions.wait(app_client.pipelines.run(pipeline.id).id, timeout=10)
        assert failed.status == "failed"
        app_client.executions.retry(failed.id)
        done = app_client.executions.wait(failed.id, timeout=10)
        assert done.status == "succeeded"
        s = steps_by_id(done)
        assert s["one"].attempts == 1 and s["call"].attempts == 2


def test_secrets_are_masked_where_params_are_recorded(app_client: BudClient) -> None:
    app_client.secrets.set("api_token", "tok-very-secret-123")
    done = run(
        app_client,
        [{"id": "a", "action": "log", "params": {"message": "token={{ secrets.api_token }}"}}],
    )
    assert done.status == "succeeded"
    assert done.steps[0].params == {"message": "token=******"}
    assert "tok-very-secret-123" not in str(app_client.executions.attempts(done.id))
    assert [s.name for s in app_client.secrets.list()] == ["api_token"]


def test_pipeline_versions_and_delete_takes_triggers(app_client: BudClient) -> None:
    p = app_client.pipelines.create(
        name="v", definition={"steps": [{"id": "a", "action": "log", "params": {"message": "v1"}}]}
    )
    trig = app_client.event_triggers.create(pipeline_id=p.id, event_type="model.added")
    first = app_client.executions.wait(app_client.pipelines.run(p.id).id)
    p2 = app_client.pipelines.update(
        p.id, definition={"steps": [{"id": "a", "action": "log", "params": {"message": "v2"}}]}
    )
    assert p2.version == 2
    second = app_client.executions.wait(app_client.pipelines.run(p.id).id)
    assert (first.pipeline_version, second.pipeline_version) == (1, 2)
    assert second.steps[0].outputs["message"] == "v2"
    app_client.pipelines.delete(p.id)
    assert list(app_client.event_triggers.list(pipeline_id=p.id)) == []
    ev = app_client.events.publish("model.added", {"model_id": "m"})
    assert all(d.trigger_id != trig.id for d in app_client.events.get(ev.event_id).decisions or [])


def test_run_pipeline_starts_a_child_once(app_client: BudClient) -> None:
    child = app_client.pipelines.create(
        name="child",
        definition={
            "steps": [{"id": "echo", "action": "set_output", "params": {"got": "{{ params.x }}"}}]
        },
    )
    done = run(
        app_client,
        [
            {
                "id": "call",
                "action": "run_pipeline",
                "params": {"pipeline_id": child.id, "params": {"x": 7}},
            }
        ],
    )
    assert done.status == "succeeded"
    out = done.steps[0].outputs
    assert out["status"] == "succeeded" and out["outputs"] == {"echo": {"got": 7}}
    assert len(list(app_client.executions.list(pipeline_id=child.id))) == 1


def test_one_execution_per_trigger_and_event_across_batches(app_client: BudClient) -> None:
    p = app_client.pipelines.create(
        name="d", definition={"steps": [{"id": "a", "action": "log", "params": {"message": "x"}}]}
    )
    app_client.event_triggers.create(pipeline_id=p.id, event_type="cluster.ready")
    env = {"event_type": "cluster.ready", "event_id": "evt_same", "data": {"cluster_id": "c"}}
    results = app_client.events.publish_many([env, env])
    assert [r.duplicate for r in results] == [False, True]
    again = app_client.events.publish_many([env])
    assert again[0].duplicate is True
    assert len(list(app_client.executions.list(event_id="evt_same"))) == 1


def test_executions_filter_by_time(app_client: BudClient) -> None:
    from datetime import UTC, datetime, timedelta

    p = app_client.pipelines.create(
        name="t", definition={"steps": [{"id": "a", "action": "log", "params": {"message": "x"}}]}
    )
    first = app_client.pipelines.run(p.id)
    time.sleep(0.05)
    middle = datetime.now(UTC)
    time.sleep(0.05)
    second = app_client.pipelines.run(p.id)
    later = [e.id for e in app_client.executions.list(pipeline_id=p.id, since=middle)]
    earlier = [e.id for e in app_client.executions.list(pipeline_id=p.id, until=middle)]
    assert later == [second.id] and earlier == [first.id]
    future = middle + timedelta(hours=1)
    assert list(app_client.executions.list(since=future)) == []
