"""Lifecycle events: an execution that ends becomes an ``execution.<status>`` event.

On the in-memory fake and SQLite, with the engine's workers running. The sweeper's emit pass
(``Emitter.emit``) is called directly; waiting is on the engine's "an execution finished"
signal, not on sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bud.services import Bud
from bud.settings import Settings
from bud.store import open_repository
from bud.store.memory import MemoryRepository

FAILS = {"steps": [{"id": "boom", "action": "fail", "params": {"message": "out of GPUs"}}]}
OK = {"steps": [{"id": "a", "action": "log", "params": {"message": "hi"}}]}
NAP = {"steps": [{"id": "nap", "action": "delay", "params": {"seconds": 30}}]}
ALERT = {
    "steps": [
        {
            "id": "say",
            "action": "log",
            "params": {
                "message": "{{ event.data.pipeline_name }} failed: {{ event.data.error }}",
            },
        }
    ]
}


@pytest.fixture(params=["memory", "sqlite"])
def repo_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryRepository
    else:
        url = f"sqlite:///{tmp_path / 'bud.db'}"
        yield lambda: open_repository(url)


@pytest.fixture
async def core(repo_factory: Any, tmp_path: Path) -> AsyncIterator[Bud]:
    settings = Settings(data_dir=tmp_path / "data", poll_seconds=60, max_chain_depth=3)
    bud = Bud(settings, repo=repo_factory())
    await bud.start()
    try:
        yield bud
    finally:
        await bud.stop()


async def settle(core: Bud, rounds: int = 40) -> None:
    """Run until no execution is open and every lifecycle event is ingested."""
    for _ in range(rounds):
        open_ = [
            e
            for status in ("queued", "running")
            for e in (await core.executions.list(status=status, limit=100))["items"]
        ]
        if open_:
            await core.engine.signals.wait_finished(timeout=2.0)
            continue
        if not await core.engine.sweeper.emitter.emit():
            return
    raise AssertionError("the engine did not settle")


async def events_of(core: Bud, event_type: str) -> list[dict[str, Any]]:
    page = await core.events.list(event_type=event_type, limit=100)
    return [await core.events.get(e["event_id"]) for e in page["items"]]


async def test_a_failed_execution_starts_the_failure_pipeline(core: Bud) -> None:
    failing = await core.pipelines.create("deploy", FAILS)
    alert = await core.pipelines.create("alert", ALERT)
    model_trigger = await core.triggers.create(failing["id"], "model.added")
    watcher = await core.triggers.create(
        alert["id"], "execution.failed", filter={"pipeline_name": "deploy"}
    )
    [published] = await core.events.publish(
        [{"event_type": "model.added", "data": {"model_id": "m1"}}]
    )
    await settle(core)
    [failed] = await events_of(core, "execution.failed")
    data = failed["data"]
    [first] = (await core.executions.list(pipeline_id=failing["id"]))["items"]
    assert data["execution_id"] == first["id"] and data["status"] == "failed"
    assert (data["pipeline_id"], data["pipeline_name"]) == (failing["id"], "deploy")
    assert data["trigger_id"] == model_trigger["id"]
    assert data["event_id"] == published["event_id"] and data["event_type"] == "model.added"
    assert "out of GPUs" in data["error"] and data["duration_seconds"] >= 0
    assert failed["source"] == "bud" and failed["depth"] == 1
    assert failed["causation_id"] == first["id"]  # the execution, as for emitted events
    assert failed["correlation_id"] == published["correlation_id"]
    [decision] = failed["decisions"]
    assert decision["trigger_id"] == watcher["id"] and decision["outcome"] == "fired"
    [alerted] = failed["executions"]
    done = await core.executions.get(alerted)
    assert done["status"] == "succeeded"
    assert done["steps"][0]["outputs"]["message"] == "deploy failed: step boom failed: out of GPUs"
    # The alert's own success is an event too; nothing listens to it.
    [succeeded] = await events_of(core, "execution.succeeded")
    assert succeeded["data"]["execution_id"] == alerted and succeeded["depth"] == 2


async def test_cancelled_and_manual_runs_have_events(core: Bud) -> None:
    slow = await core.pipelines.create("slow", NAP)
    quick = await core.pipelines.create("quick", OK)
    slow_run = await core.pipelines.run(slow["id"])
    quick_run = await core.pipelines.run(quick["id"])
    await core.executions.cancel(slow_run)
    await settle(core)
    [cancelled] = await events_of(core, "execution.cancelled")
    assert cancelled["data"]["execution_id"] == slow_run
    assert cancelled["data"]["error"] == "cancelled by request"
    assert cancelled["data"]["trigger_id"] is None and cancelled["depth"] == 1
    [succeeded] = await events_of(core, "execution.succeeded")
    assert succeeded["data"]["execution_id"] == quick_run
    assert await core.engine.sweeper.emitter.emit() == 0  # each ending is one event


async def test_a_failure_pipeline_that_fails_stops_at_the_chain_depth(core: Bud) -> None:
    failing = await core.pipelines.create("fails", FAILS)
    trigger = await core.triggers.create(failing["id"], "execution.failed")
    await core.pipelines.run(failing["id"])
    await settle(core)
    failures = await events_of(core, "execution.failed")
    # The manual run fails (depth 1); each failure starts one more up to max_chain_depth (3).
    assert sorted(e["depth"] for e in failures) == [1, 2, 3, 4]
    deepest = next(e for e in failures if e["depth"] == 4)
    [decision] = deepest["decisions"]
    assert decision["outcome"] == "suppressed" and decision["reason_code"] == "chain_depth"
    assert deepest["executions"] == []
    assert len((await core.executions.list(pipeline_id=failing["id"]))["items"]) == 4
    assert (await core.triggers.get(trigger["id"]))["fire_count"] == 3


async def test_the_breaker_applies_to_lifecycle_events(repo_factory: Any, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", poll_seconds=60)
    core = Bud(settings, repo=repo_factory())
    await core.start()
    try:
        quick = await core.pipelines.create("quick", OK)
        watch = await core.pipelines.create("watch", OK)
        trigger = await core.triggers.create(
            watch["id"],
            "execution.succeeded",
            filter={"pipeline_name": "quick"},
            flow={"circuit_breaker": {"max_fires": 2, "window_seconds": 600}},
        )
        for _ in range(4):
            await core.pipelines.run(quick["id"])
        await settle(core)
        got = await core.triggers.get(trigger["id"])
        assert got["enabled"] is False and got["tripped_reason"]
        assert got["fire_count"] == 2
        [tripped] = await events_of(core, "trigger.tripped")
        assert tripped["data"]["trigger_id"] == trigger["id"]
    finally:
        await core.stop()


async def test_lifecycle_event_types_are_built_in_with_schemas(core: Bud) -> None:
    types = {t["name"]: t for t in core.events.list_types()["items"]}
    for name in ("execution.succeeded", "execution.failed", "execution.cancelled"):
        assert types[name]["builtin"] is True
        assert {"execution_id", "pipeline_id", "error", "duration_seconds"} <= set(
            types[name]["schema"]["properties"]
        )
    assert types["schedule.tick"]["builtin"] is True


async def test_a_retry_before_the_event_is_out_keeps_the_failure_event(core: Bud) -> None:
    failing = await core.pipelines.create("flaky", FAILS)
    run = await core.pipelines.run(failing["id"])
    for _ in range(40):  # the run fails; its note waits in the outbox
        if (await core.executions.get(run))["status"] == "failed":
            break
        await core.engine.signals.wait_finished(timeout=2.0)
    await core.executions.retry(run)  # running again before the sweeper took the note
    await settle(core)
    failures = await events_of(core, "execution.failed")
    assert len(failures) == 2  # the first ending and the retry's, each its own event
    assert {e["data"]["execution_id"] for e in failures} == {run}
    assert all("out of GPUs" in e["data"]["error"] for e in failures)


@pytest.mark.postgres
async def test_two_engines_on_one_postgres_emit_each_ending_once(
    postgres_database: str, tmp_path: Path
) -> None:
    engines = []
    for name in ("one", "two"):
        settings = Settings(data_dir=tmp_path / name, poll_seconds=60)
        engine = Bud(settings, repo=open_repository(postgres_database))
        await engine.start()
        engines.append(engine)
    one, two = engines
    try:
        quick = await one.pipelines.create("quick", OK)
        runs = [await one.pipelines.run(quick["id"]) for _ in range(20)]
        for _ in range(100):
            page = await one.executions.list(pipeline_id=quick["id"], status="succeeded")
            if len(page["items"]) == len(runs):
                break
            await one.engine.signals.wait_finished(timeout=0.5)
        events: list[dict[str, Any]] = []
        for _ in range(50):  # both engines' sweepers (and these calls) race for the notes
            await asyncio.gather(
                one.engine.sweeper.emitter.emit(), two.engine.sweeper.emitter.emit()
            )
            page = await one.events.list(event_type="execution.succeeded", limit=100)
            events = page["items"]
            if len(events) >= len(runs):
                break
            await asyncio.sleep(0.1)  # a note the other engine holds is committed meanwhile
        assert sorted(e["data"]["execution_id"] for e in events) == sorted(runs)  # each once
    finally:
        for engine in engines:
            await engine.stop()
