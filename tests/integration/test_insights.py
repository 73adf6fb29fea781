"""Operator insight: dry runs, backtests, trigger stats, replay and pipeline-change warnings."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bud import AsyncBudClient, BudClient, FilterError, NotFoundError, ValidationError
from bud.settings import Settings
from tests.support import RECEIVERS_ALLOW

LOG = {"steps": [{"id": "a", "action": "log", "params": {"message": "{{ event.model_id }}"}}]}


def pipeline_and_trigger(
    client: BudClient,
    filter: dict[str, Any] | None = None,
    flow: dict[str, Any] | None = None,
    definition: dict[str, Any] = LOG,
) -> tuple[Any, Any]:
    pipeline = client.pipelines.create(name="p", definition=definition)
    trigger = client.event_triggers.create(
        pipeline_id=pipeline.id, event_type="model.added", filter=filter, flow=flow
    )
    return pipeline, trigger


def model_added(client: BudClient, model_id: str, **data: Any) -> str:
    return client.events.publish("model.added", {"model_id": model_id, **data}).event_id


def finish(client: BudClient, execution_ids: list[str]) -> None:
    """Let executions end before the app stops, so teardown does not race them."""
    for execution_id in execution_ids:
        client.executions.wait(execution_id, timeout=20)


# ---------------------------------------------------------------------------------------------
# Dry run


def test_dry_run_renders_masks_and_explains_without_storing(app_client: BudClient) -> None:
    app_client.secrets.set("api_token", "tok-9f8e7d6c")
    pipeline = app_client.pipelines.create(
        name="dry",
        definition={
            "parameters": {"replicas": 2},
            "steps": [
                {
                    "id": "call",
                    "action": "http_request",
                    "params": {
                        "url": "https://registry.example/models/{{ event.model_id }}",
                        "headers": {"Authorization": "Bearer {{ secrets.api_token }}"},
                        "json": {"replicas": "{{ params.replicas }}"},
                    },
                },
                {
                    "id": "region",
                    "action": "log",
                    "params": {"message": "deploy to {{ event.region }}"},
                },
                {
                    "id": "report",
                    "action": "log",
                    "depends_on": ["call"],
                    "params": {"message": "status {{ steps.call.outputs.status_code }}"},
                },
                {
                    "id": "wait",
                    "action": "delay",
                    "params": {"seconds": "{{ event.model_name }}"},
                },
                {
                    "id": "maybe",
                    "action": "log",
                    "condition": "{{ event.auto_deploy }}",
                    "params": {"message": "auto"},
                },
            ],
        },
    )
    events_before = len(app_client.events.list().to_list())
    result = app_client.pipelines.dry_run(
        pipeline.id,
        event={
            "event_type": "model.added",
            "data": {"model_id": "model_1", "model_name": "Llama", "auto_deploy": False},
        },
        params={"replicas": 3},
    )
    assert (result.pipeline_id, result.version) == (pipeline.id, 1)
    steps = {s.step_id: s for s in result.steps}
    assert list(steps) == ["call", "region", "report", "wait", "maybe"]

    call = steps["call"]
    assert call.error is None
    assert call.params["url"] == "https://registry.example/models/model_1"
    assert call.params["json"] == {"replicas": 3}  # run params override the defaults
    assert call.params["headers"]["Authorization"] == "Bearer ******"
    assert "tok-9f8e7d6c" not in json.dumps(result.model_dump())

    assert steps["region"].params is None
    assert "event.region" in (steps["region"].error or "")
    assert "steps.region.params.message" in (steps["region"].error or "")

    report = steps["report"]
    assert report.params is None and report.depends_on == ["call"]
    assert (report.error or "").startswith("needs runtime output:")
    assert "steps.call" in (report.error or "")

    wait = steps["wait"]  # rendered, but the action's schema refuses it
    assert wait.params == {"seconds": "Llama"}
    assert "steps.wait.params.seconds" in (wait.error or "")

    maybe = steps["maybe"]
    assert maybe.condition is False and maybe.would_skip is True
    assert not call.would_skip

    # Nothing was stored or started.
    assert len(app_client.events.list().to_list()) == events_before
    assert app_client.executions.list().to_list() == []


def test_dry_run_input_errors(app_client: BudClient) -> None:
    pipeline = app_client.pipelines.create(name="dry", definition=LOG)
    bare = app_client.pipelines.dry_run(pipeline.id)
    assert "event.model_id" in (bare.steps[0].error or "")
    with pytest.raises(NotFoundError):
        app_client.pipelines.dry_run("pipe_missing")
    with pytest.raises(ValidationError) as info:
        app_client.pipelines.dry_run(pipeline.id, event={"data": {}})
    assert info.value.details["path"] == "event.event_type"
    # A partial event is no refusal: the schema's complaints are warnings beside the render.
    partial = app_client.pipelines.dry_run(
        pipeline.id, event={"event_type": "model.added", "data": {"model_name": "m"}}
    )
    assert partial.warnings == [
        "event.data: 'model_id' is a required property (schema of model.added)"
    ]
    with pytest.raises(ValidationError) as info:  # the envelope itself is still checked
        app_client.pipelines.dry_run(pipeline.id, event={"event_type": "no.such", "data": {}})
    assert info.value.details["path"] == "event.event_type"


# ---------------------------------------------------------------------------------------------
# Backtest


def test_backtest_counts_matches_with_examples_and_near_misses(app_client: BudClient) -> None:
    _, trigger = pipeline_and_trigger(
        app_client, filter={"model_source": "hugging_face", "auto_deploy": True}
    )
    hits = [
        model_added(app_client, name, model_source="hugging_face", auto_deploy=True)
        for name in ("hit0", "hit1")
    ]
    near = model_added(app_client, "near", model_source="hugging_face", auto_deploy=False)
    model_added(app_client, "far", model_source="ollama", auto_deploy=False)
    app_client.events.publish(
        "model.added",
        {"model_id": "t", "model_source": "hugging_face", "auto_deploy": True},
        test=True,
    )

    result = app_client.event_triggers.backtest(trigger.id)
    assert (result.event_type, result.trigger_id) == ("model.added", trigger.id)
    assert (result.scanned, result.matched) == (4, 2)  # the test event is not scanned
    assert sorted(e["event_id"] for e in result.examples) == sorted(hits)
    assert result.examples[0]["data"]["model_source"] == "hugging_face"
    [miss] = result.near_misses  # "far" fails on two clauses: not a near miss
    assert miss["event_id"] == near
    assert "failed only on" in miss["summary"] and "auto_deploy" in miss["summary"]
    assert app_client.event_triggers.get(trigger.id).fire_count == 2  # unchanged: fired nothing

    adhoc = app_client.event_triggers.backtest(
        event_type="model.added", filter={"model_source": {"$prefix": "hug"}}, limit=2
    )
    assert (adhoc.scanned, adhoc.matched, adhoc.trigger_id) == (2, 1, None)
    everything = app_client.event_triggers.backtest(event_type="model.added")
    assert everything.matched == everything.scanned == 4

    with pytest.raises(FilterError) as info:
        app_client.event_triggers.backtest(event_type="model.added", filter={"size": {"$gt": [1]}})
    assert info.value.details["path"] == "filter.size.$gt"
    with pytest.raises(ValidationError):
        app_client.event_triggers.backtest(event_type="no.such_type")
    with pytest.raises(ValidationError) as info:
        app_client.event_triggers.backtest(trigger.id, limit=10_001)
    assert info.value.details["path"] == "limit"
    with pytest.raises(NotFoundError):
        app_client.event_triggers.backtest("trig_missing")
    finish(app_client, [x.id for x in app_client.executions.list()])


# ---------------------------------------------------------------------------------------------
# Stats


def test_stats_count_decisions_suppressions_and_rate(app_client: BudClient) -> None:
    _, trigger = pipeline_and_trigger(
        app_client,
        filter={"model_source": "hugging_face"},
        flow={"rate_limit": {"max": 1, "per_seconds": 60}},
    )
    empty = app_client.event_triggers.stats(trigger.id)
    assert (empty.fire_count, empty.last_fired_at, empty.decisions) == (0, None, {})
    for i in range(3):
        model_added(app_client, f"hf{i}", model_source="hugging_face")
    for i in range(2):
        model_added(app_client, f"ol{i}", model_source="ollama")

    stats = app_client.event_triggers.stats(trigger.id)
    assert stats.trigger_id == trigger.id
    assert stats.fire_count == 1 and stats.last_fired_at is not None
    assert stats.decisions == {"fired": 1, "suppressed": 2, "filtered": 2}
    assert stats.suppressed == {"rate_limited": 2}
    assert stats.rate == {"last_minute": 1, "last_hour": 1}
    with pytest.raises(NotFoundError):
        app_client.event_triggers.stats("trig_missing")
    finish(app_client, [x.id for x in app_client.executions.list()])


# ---------------------------------------------------------------------------------------------
# Replay


def test_replay_honours_or_bypasses_dedup(app_client: BudClient) -> None:
    _, trigger = pipeline_and_trigger(app_client)
    event_id = model_added(app_client, "m1")
    [first] = app_client.executions.list(event_id=event_id).to_list()

    honoured = app_client.events.replay([event_id])
    assert (honoured.events, honoured.fired, honoured.executions) == (1, 0, [])
    [d] = honoured.decisions
    assert (d.event_id, d.trigger_id, d.outcome, d.reason_code) == (
        event_id,
        trigger.id,
        "suppressed",
        "already_fired",
    )
    assert len(app_client.executions.list(event_id=event_id).to_list()) == 1

    bypassed = app_client.events.replay([event_id], bypass_dedup=True)
    assert bypassed.fired == 1
    [again] = bypassed.executions
    runs = app_client.executions.list(event_id=event_id).to_list()
    assert {r.id for r in runs} == {first.id, again}
    assert {r.trigger_id for r in runs} == {trigger.id}
    finish(app_client, [first.id, again])
    assert app_client.executions.get(again).steps[0].outputs["message"] == "m1"
    assert app_client.event_triggers.get(trigger.id).fire_count == 2
    outcomes = [x.outcome for x in app_client.events.get(event_id).decisions or []]
    assert outcomes == ["fired", "suppressed", "fired"]  # each replay is on the record

    with pytest.raises(NotFoundError):
        app_client.events.replay(["evt_missing"])


def test_replay_to_one_chosen_trigger(app_client: BudClient) -> None:
    _, old = pipeline_and_trigger(app_client)
    event_id = model_added(app_client, "m1")
    _, new = pipeline_and_trigger(app_client)  # created after the event: a backfill
    result = app_client.events.replay([event_id], trigger_id=new.id)
    [d] = result.decisions
    assert (d.trigger_id, d.outcome) == (new.id, "fired")
    assert result.executions == [d.execution_id]
    runs = app_client.executions.list(event_id=event_id).to_list()
    assert sorted(r.trigger_id or "" for r in runs) == sorted([old.id, new.id])
    with pytest.raises(NotFoundError):
        app_client.events.replay([event_id], trigger_id="trig_missing")
    finish(app_client, [r.id for r in runs])


def test_replay_by_type_and_time_range(app_client: BudClient) -> None:
    older = model_added(app_client, "m0")
    time.sleep(0.05)
    start = datetime.now(UTC)
    time.sleep(0.05)
    inside = [model_added(app_client, "m1"), model_added(app_client, "m2")]
    time.sleep(0.05)
    end = datetime.now(UTC)
    time.sleep(0.05)
    model_added(app_client, "m3")
    app_client.events.publish("deployment.failed", {"deployment_id": "d1", "error_message": "x"})
    _, trigger = pipeline_and_trigger(app_client)  # none of the events has fired it yet

    result = app_client.events.replay(event_type="model.added", since=start, until=end)
    assert (result.events, result.fired) == (2, 2)
    assert [d.event_id for d in result.decisions] == inside  # oldest first
    assert {d.trigger_id for d in result.decisions} == {trigger.id}

    rest = app_client.events.replay(event_type="model.added", since=start.isoformat())
    assert rest.events == 3 and rest.fired == 1  # m1, m2 already fired: only m3 runs
    assert older not in {d.event_id for d in rest.decisions}
    capped = app_client.events.replay(event_type="model.added", limit=1)
    assert [d.event_id for d in capped.decisions] == [older]
    finish(app_client, [*result.executions, *rest.executions, *capped.executions])


def test_replay_to_a_disabled_trigger_is_recorded(app_client: BudClient) -> None:
    _, trigger = pipeline_and_trigger(app_client, filter={"model_source": "hugging_face"})
    app_client.event_triggers.disable(trigger.id)
    matching = model_added(app_client, "m1", model_source="hugging_face")
    other = model_added(app_client, "m2", model_source="ollama")
    result = app_client.events.replay([matching, other], bypass_dedup=True)
    assert result.fired == 0 and result.executions == []
    by_event = {d.event_id: d for d in result.decisions}
    assert (by_event[matching].outcome, by_event[matching].reason_code) == ("disabled", "disabled")
    assert by_event[other].outcome == "filtered"
    assert "model_source" in (by_event[other].reason or "")


def test_replay_needs_ids_or_a_type(app_client: BudClient) -> None:
    with pytest.raises(ValidationError) as info:
        app_client.events.replay()
    assert "event_ids" in info.value.message and "event_type" in info.value.message
    with pytest.raises(ValidationError):
        app_client.events.replay(["evt_1"], event_type="model.added")
    with pytest.raises(ValidationError) as info:
        app_client.events.replay(["evt_1"], since="2024-01-01T00:00:00Z")
    assert info.value.details["path"] == "since"
    with pytest.raises(ValidationError) as info:
        app_client.events.replay(event_type="model.added", since="yesterday")
    assert info.value.details["path"] == "since"
    with pytest.raises(ValidationError) as info:
        app_client.events.replay(event_type="no.such_type")
    assert info.value.details["path"] == "event_type"


# ---------------------------------------------------------------------------------------------
# Template warnings when a pipeline changes


def test_pipeline_update_warns_per_trigger(app_client: BudClient) -> None:
    pipeline, trigger = pipeline_and_trigger(app_client)
    other = app_client.event_triggers.create(
        pipeline_id=pipeline.id, event_type="deployment.failed"
    )
    changed = app_client.pipelines.update(
        pipeline.id,
        definition={
            "steps": [
                {
                    "id": "say",
                    "action": "log",
                    "params": {
                        "message": "{{ event.model_id }} in {{ event.region }} "
                        "{{ event.zone | default('z1') }}"
                    },
                }
            ]
        },
    )
    assert changed.version == 2
    warnings = changed.warnings
    mine = [w for w in warnings if w.startswith(f"{trigger.id}: ")]
    theirs = [w for w in warnings if w.startswith(f"{other.id}: ")]
    assert len(mine) == 1 and "event.region" in mine[0] and "steps[0] (say)" in mine[0]
    assert len(theirs) == 1 and "event.region" in theirs[0]  # deployment.failed has model_id
    assert not any("event.zone" in w for w in warnings)  # it has a default
    assert app_client.pipelines.update(pipeline.id, name="renamed").warnings == []
    assert app_client.pipelines.get(pipeline.id).warnings == []


# ---------------------------------------------------------------------------------------------
# The async client


async def test_async_client_mirrors_the_new_calls(tmp_path: Path) -> None:
    from bud.server.app import create_app

    app = create_app(
        Settings(data_dir=tmp_path / "data", poll_seconds=0.2, outbound_allow=RECEIVERS_ALLOW),
        check_responses=True,
    )
    async with (
        app.router.lifespan_context(app),
        AsyncBudClient(
            base_url="http://localhost", transport=httpx.ASGITransport(app=app)
        ) as client,
    ):
        pipeline = await client.pipelines.create(name="p", definition=LOG)
        trigger = await client.event_triggers.create(
            pipeline_id=pipeline.id, event_type="model.added"
        )
        dry = await client.pipelines.dry_run(
            pipeline.id, event={"event_type": "model.added", "data": {"model_id": "m1"}}
        )
        assert dry.steps[0].params == {"message": "m1"}
        event = await client.events.publish("model.added", {"model_id": "m1"})
        backtest = await client.event_triggers.backtest(trigger.id)
        assert (backtest.scanned, backtest.matched) == (1, 1)
        adhoc = await client.event_triggers.backtest(
            event_type="model.added", filter={"model_id": "m2"}
        )
        assert adhoc.matched == 0 and len(adhoc.near_misses) == 1
        replay = await client.events.replay([event.event_id], bypass_dedup=True)
        assert replay.fired == 1
        stats = await client.event_triggers.stats(trigger.id)
        assert stats.fire_count == 2 and stats.decisions == {"fired": 2}
        stored = await client.events.get(event.event_id)
        for execution_id in [*replay.executions, *(stored.executions or [])]:
            await client.executions.wait(execution_id, timeout=20)
