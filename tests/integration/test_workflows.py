"""Fan-out (for_each) and durable waits (wait_for_event, cancel_on, deployment wait: true).

On the in-memory fake and SQLite (waits also on PostgreSQL), with a manual clock: a timeout
passes because the test moves the clock, never by sleeping it out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bud.clock import ManualClock
from bud.errors import ValidationError
from bud.services import Bud
from bud.settings import Settings
from bud.store.memory import MemoryRepository
from tests.support import need


class Harness:
    def __init__(self, core: Bud, clock: ManualClock, make: Callable[[], Bud]) -> None:
        self.core = core
        self.clock = clock
        self.make = make

    async def run(
        self, steps: list[dict[str, Any]], event: dict[str, Any] | None = None, **extra: Any
    ) -> str:
        pipeline = await self.core.pipelines.create("wf", {"steps": steps, **extra})
        return await self.core.pipelines.run(pipeline["id"], event=event)

    async def get(self, execution_id: str) -> dict[str, Any]:
        return await self.core.executions.get(execution_id)

    async def until(self, execution_id: str, check: Callable[[dict[str, Any]], bool]) -> Any:
        for _ in range(1000):
            found = await self.get(execution_id)
            if check(found):
                return found
            await asyncio.sleep(0.01)
        raise AssertionError(f"not reached: {await self.get(execution_id)}")

    async def done(self, execution_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await self.until(
            execution_id, lambda e: e["status"] in ("succeeded", "failed", "cancelled")
        )
        return found

    async def waiting(self, execution_id: str, step_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await self.until(
            execution_id, lambda e: step(e, step_id)["status"] == "waiting"
        )
        return found

    async def publish(self, event_type: str, data: dict[str, Any]) -> str:
        [env] = await self.core.events.publish([{"event_type": event_type, "data": data}])
        return str(env["event_id"])

    async def restart(self) -> None:
        await self.core.stop(grace=0.1)
        self.core = self.make()
        await self.core.start()


def step(execution: dict[str, Any], step_id: str) -> dict[str, Any]:
    [found] = [s for s in execution["steps"] if s["step_id"] == step_id]
    return found


async def _harness(store: str, tmp_path: Path, postgres_url: str | None) -> AsyncIterator[Harness]:
    clock = ManualClock()
    url: str | None = None
    if store == "sqlite":
        url = f"sqlite:///{tmp_path / 'bud.db'}"
    elif store == "postgres":
        need(postgres_url is not None, "PostgreSQL is not available")
        from tests.conftest import _fresh_database

        assert postgres_url is not None
        url = _fresh_database(postgres_url)
    memory = MemoryRepository() if store == "memory" else None

    def make() -> Bud:
        settings = Settings(
            data_dir=tmp_path / "data",
            database_url=url,
            poll_seconds=0.02,
            workers=4,
            platform_deployments_pending=True,
        )
        return Bud(settings, repo=memory, clock=clock, run_workers=True)

    core = make()
    await core.start()
    h = Harness(core, clock, make)
    try:
        yield h
    finally:
        await h.core.stop(grace=0.1)


@pytest.fixture(params=["memory", "sqlite"])
async def h(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    async for harness in _harness(request.param, tmp_path, None):
        yield harness


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def hw(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str | None
) -> AsyncIterator[Harness]:
    async for harness in _harness(request.param, tmp_path, postgres_url):
        yield harness


FIND = {
    "id": "find",
    "action": "set_output",
    "params": {"models": ["a", "b", "c", "d", "e"]},
}


# -- fan-out ---------------------------------------------------------------------------------
async def test_for_each_runs_each_item_with_item_and_index_outputs_in_order(hw: Harness) -> None:
    exe = await hw.run(
        [
            FIND,
            {
                "id": "deploy",
                "action": "set_output",
                "depends_on": ["find"],
                "for_each": "{{ steps.find.outputs.models }}",
                "params": {"name": "{{ item }}-{{ index }}", "event": "{{ event.model_id }}"},
            },
            {
                "id": "after",
                "action": "set_output",
                "depends_on": ["deploy"],
                "params": {"count": "{{ steps.deploy.outputs.count }}"},
            },
        ],
        event={"event_type": "model.added", "data": {"model_id": "m1"}},
    )
    done = await hw.done(exe)
    assert done["status"] == "succeeded", done
    deploy = step(done, "deploy")
    names = ["a-0", "b-1", "c-2", "d-3", "e-4"]
    assert [o["name"] for o in deploy["outputs"]["items"]] == names
    assert deploy["outputs"]["count"] == 5 and deploy["outputs"]["failed"] == 0
    assert [i["index"] for i in deploy["items"]] == [0, 1, 2, 3, 4]
    assert {i["status"] for i in deploy["items"]} == {"succeeded"}
    assert step(done, "after")["outputs"] == {"count": 5}
    assert [s["step_id"] for s in done["steps"]] == ["find", "deploy", "after"]


async def test_max_parallel_bounds_the_items_running_at_once(hw: Harness) -> None:
    # Items that wait for their own event stay open until the test says: the bound is exact.
    exe = await hw.run(
        [
            {
                "id": "each",
                "action": "wait_for_event",
                "for_each": ["d0", "d1", "d2", "d3", "d4"],
                "max_parallel": 2,
                "params": {
                    "event_type": "deployment.created",
                    "filter": {"deployment_id": "{{ item }}"},
                },
            }
        ]
    )

    async def states(expected: list[str]) -> None:
        await hw.until(exe, lambda e: [i["status"] for i in step(e, "each")["items"]] == expected)

    W, P, S = "waiting", "pending", "succeeded"
    await states([W, W, P, P, P])
    await hw.publish("deployment.created", {"deployment_id": "d1"})
    await states([W, S, W, P, P])
    await hw.publish("deployment.created", {"deployment_id": "d3"})  # not started: no effect
    await hw.publish("deployment.created", {"deployment_id": "d0"})
    await states([S, S, W, W, P])
    await hw.publish("deployment.created", {"deployment_id": "d3"})
    await states([S, S, W, S, W])
    for ref in ("d2", "d4"):
        await hw.publish("deployment.created", {"deployment_id": ref})
    done = await hw.done(exe)
    assert done["status"] == "succeeded"
    refs = [o["event"]["data"]["deployment_id"] for o in step(done, "each")["outputs"]["items"]]
    assert refs == ["d0", "d1", "d2", "d3", "d4"]


def _failing_items(rule: str) -> list[dict[str, Any]]:
    return [
        {
            "id": "each",
            "action": "fail",
            "for_each": [1, 2, 3, 4],
            "max_parallel": 1,
            "on_item_failure": rule,
            "condition": "{{ true }}",
            "params": {"message": "item {{ item }} broke"},
        }
    ]


async def test_on_item_failure_stop_starts_no_more_items(h: Harness) -> None:
    done = await h.done(await h.run(_failing_items("stop")))
    assert done["status"] == "failed"
    each = step(done, "each")
    assert [i["status"] for i in each["items"]] == ["failed", "cancelled", "cancelled", "cancelled"]
    assert "1 of 4 items failed; item 0: item 1 broke" in each["error"]
    assert "3 not started" in each["error"]


async def test_on_item_failure_continue_runs_every_item_then_fails(h: Harness) -> None:
    done = await h.done(await h.run(_failing_items("continue")))
    assert done["status"] == "failed"
    each = step(done, "each")
    assert [i["status"] for i in each["items"]] == ["failed"] * 4
    assert each["error"].startswith("4 of 4 items failed; item 0: item 1 broke")
    assert each["outputs"]["count"] == 4 and each["outputs"]["failed"] == 4


async def test_retry_from_a_for_each_step_runs_its_items_again(h: Harness) -> None:
    exe = await h.run(
        [{"id": "each", "action": "set_output", "for_each": [1, 2], "params": {"n": "{{ item }}"}}]
    )
    assert (await h.done(exe))["status"] == "succeeded"
    await h.core.executions.retry(exe, from_step="each")
    done = await h.until(
        exe,
        lambda e: (
            e["status"] == "succeeded"
            and [i["attempts"] for i in step(e, "each")["items"]] == [2, 2]
        ),
    )
    assert step(done, "each")["outputs"]["items"] == [{"n": 1}, {"n": 2}]


async def test_for_each_that_is_not_a_list_fails_naming_the_template(h: Harness) -> None:
    done = await h.done(
        await h.run(
            [
                {"id": "find", "action": "set_output", "params": {"models": "just-one"}},
                {
                    "id": "deploy",
                    "action": "log",
                    "depends_on": ["find"],
                    "for_each": "{{ steps.find.outputs.models }}",
                    "params": {"message": "{{ item }}"},
                },
            ]
        )
    )
    deploy = step(done, "deploy")
    assert done["status"] == "failed" and deploy["status"] == "failed"
    assert "steps.deploy.for_each" in deploy["error"]
    assert "{{ steps.find.outputs.models }}" in deploy["error"] and "a string" in deploy["error"]


async def test_an_empty_list_succeeds_with_no_items(h: Harness) -> None:
    done = await h.done(
        await h.run([{"id": "e", "action": "log", "for_each": [], "params": {"message": "x"}}])
    )
    assert done["status"] == "succeeded"
    assert step(done, "e")["outputs"] == {"items": [], "count": 0, "failed": 0}


async def test_fan_out_fields_are_validated_with_paths(h: Harness) -> None:
    bad = {
        "steps": [
            {
                "id": "x",
                "action": "log",
                "params": {"message": "m"},
                "for_each": 3,
                "max_parallel": 0,
                "on_item_failure": "maybe",
            },
            {"id": "y", "action": "log", "params": {"message": "m"}, "max_parallel": 2},
        ],
        "cancel_on": [
            {"filter": {}},
            {"event_type": "model.updated", "filter": {"x": {"$gt": []}}},
        ],
    }
    with pytest.raises(ValidationError) as caught:
        await h.core.pipelines.create("bad", bad)
    paths = {e["path"] for e in caught.value.details["errors"]}
    assert {
        "steps[0] (x).for_each",
        "steps[0] (x).max_parallel",
        "steps[0] (x).on_item_failure",
        "steps[1] (y).max_parallel",
        "definition.cancel_on[0].event_type",
        "definition.cancel_on[1].filter",
    } <= paths


async def test_dry_run_shows_the_items(h: Harness) -> None:
    pipeline = await h.core.pipelines.create(
        "dry",
        {
            "steps": [
                {
                    "id": "each",
                    "action": "log",
                    "for_each": "{{ event.models }}",
                    "params": {"message": "{{ item }} #{{ index }}"},
                }
            ]
        },
    )
    result = await h.core.insights.dry_run(
        pipeline["id"],
        {"event_type": "model.added", "data": {"model_id": "m", "models": ["x", "y"]}},
    )
    [each] = result["steps"]
    assert each["items"] == ["x", "y"] and each["error"] is None
    assert each["params"] == {"message": "x #0"}
    pipeline = await h.core.pipelines.create(
        "later",
        {
            "steps": [
                FIND,
                {
                    "id": "each",
                    "action": "log",
                    "depends_on": ["find"],
                    "for_each": "{{ steps.find.outputs.models }}",
                    "params": {"message": "{{ item }}"},
                },
            ]
        },
    )
    result = await h.core.insights.dry_run(pipeline["id"], None)
    each = result["steps"][1]
    assert each["items"] is None and each["params"] is None
    assert each["error"] == (
        "needs runtime output: steps.each.for_each reads steps.find, "
        "which is only known once step find has run"
    )


# -- durable waits ---------------------------------------------------------------------------
def _deploy_then_wait(**wait: Any) -> list[dict[str, Any]]:
    return [
        {"id": "deploy", "action": "set_output", "params": {"deployment_id": "{{ event.ref }}"}},
        {
            "id": "ready",
            "action": "wait_for_event",
            "depends_on": ["deploy"],
            "params": {
                "event_type": "deployment.created",
                "filter": {"deployment_id": "{{ steps.deploy.outputs.deployment_id }}"},
                **wait,
            },
        },
    ]


REF = {"event_type": "model.added", "data": {"model_id": "m1", "ref": "dep_7"}}


async def test_wait_for_event_resumes_on_a_match_only(hw: Harness) -> None:
    exe = await hw.run(_deploy_then_wait(timeout_seconds=600), event=REF)
    parked = await hw.waiting(exe, "ready")
    assert step(parked, "ready")["waiting_until"] is not None
    await hw.publish("deployment.created", {"deployment_id": "dep_other"})
    # Matching happens in the ingest transaction: once publish answers, a match would show.
    still = step(await hw.get(exe), "ready")
    assert still["status"] == "waiting"
    assert still["waiting_until"] == step(parked, "ready")["waiting_until"]
    async with hw.core.repo.read() as session:
        [kept] = await session.waits_for({"deployment.created"})
    assert kept["filter"] == {"deployment_id": "dep_7"}  # rendered from steps.deploy.outputs
    event_id = await hw.publish("deployment.created", {"deployment_id": "dep_7"})
    done = await hw.done(exe)
    assert done["status"] == "succeeded"
    outputs = step(done, "ready")["outputs"]
    assert outputs["timed_out"] is False and outputs["event"]["event_id"] == event_id
    assert outputs["event"]["data"]["deployment_id"] == "dep_7"


@pytest.mark.parametrize("outcome", ["fail", "continue"])
async def test_wait_for_event_times_out(h: Harness, outcome: str) -> None:
    exe = await h.run(_deploy_then_wait(timeout_seconds=60, on_timeout=outcome), event=REF)
    await h.waiting(exe, "ready")
    h.clock.advance(61)
    done = await h.done(exe)
    ready = step(done, "ready")
    if outcome == "continue":
        assert done["status"] == "succeeded" and ready["outputs"] == {
            "event": None,
            "timed_out": True,
        }
    else:
        assert (
            done["status"] == "failed" and "no deployment.created event matched" in ready["error"]
        )
    async with h.core.repo.read() as session:  # an ended execution leaves no waits behind
        assert await session.waits_for({"deployment.created"}) == []


async def test_a_wait_survives_an_engine_restart(tmp_path: Path) -> None:
    async for h in _harness("sqlite", tmp_path, None):
        exe = await h.run(_deploy_then_wait(timeout_seconds=600), event=REF)
        await h.waiting(exe, "ready")
        await h.restart()
        assert step(await h.get(exe), "ready")["status"] == "waiting"
        await h.publish("deployment.created", {"deployment_id": "dep_7"})
        assert (await h.done(exe))["status"] == "succeeded"


async def test_items_that_wait_survive_a_restart_and_resume_by_event(tmp_path: Path) -> None:
    async for h in _harness("sqlite", tmp_path, None):
        exe = await h.run(
            [
                {
                    "id": "each",
                    "action": "wait_for_event",
                    "for_each": ["d1", "d2", "d3"],
                    "max_parallel": 2,
                    "params": {
                        "event_type": "deployment.created",
                        "filter": {"deployment_id": "{{ item }}"},
                    },
                }
            ]
        )
        await h.until(
            exe,
            lambda e: (
                [i["status"] for i in step(e, "each")["items"]] == ["waiting", "waiting", "pending"]
            ),
        )
        await h.restart()
        for ref in ("d2", "d1", "d3"):
            await h.publish("deployment.created", {"deployment_id": ref})
            if ref == "d2":  # one slot frees: the third item starts waiting too
                await h.until(exe, lambda e: step(e, "each")["items"][2]["status"] == "waiting")
        done = await h.done(exe)
        assert done["status"] == "succeeded"
        events = [
            o["event"]["data"]["deployment_id"] for o in step(done, "each")["outputs"]["items"]
        ]
        assert events == ["d1", "d2", "d3"]


@pytest.mark.postgres
async def test_an_event_ingested_by_another_process_resumes_the_wait(
    tmp_path: Path, postgres_url: str | None
) -> None:
    async for h in _harness("postgres", tmp_path, postgres_url):
        exe = await h.run(_deploy_then_wait(timeout_seconds=600), event=REF)
        await h.waiting(exe, "ready")
        api_node = Bud(h.core.settings, clock=h.clock, run_workers=False, kind="api")
        await api_node.start()
        try:
            [env] = await api_node.events.publish(
                [{"event_type": "deployment.created", "data": {"deployment_id": "dep_7"}}]
            )
            done = await h.done(exe)  # the first process's worker resumes it
        finally:
            await api_node.stop(grace=0.1)
        assert done["status"] == "succeeded"
        assert step(done, "ready")["outputs"]["event"]["event_id"] == env["event_id"]


async def test_cancelling_ends_the_wait(hw: Harness) -> None:
    exe = await hw.run(_deploy_then_wait(timeout_seconds=600), event=REF)
    await hw.waiting(exe, "ready")
    await hw.core.executions.cancel(exe)
    async with hw.core.repo.read() as session:
        assert await session.waits_for({"deployment.created"}) == []
    await hw.publish("deployment.created", {"deployment_id": "dep_7"})
    done = await hw.get(exe)
    assert done["status"] == "cancelled" and step(done, "ready")["status"] == "cancelled"


async def test_a_retried_wait_waits_afresh(h: Harness) -> None:
    exe = await h.run(_deploy_then_wait(timeout_seconds=60), event=REF)
    await h.waiting(exe, "ready")
    await h.core.executions.cancel(exe)
    h.clock.advance(120)  # past the first wait's timeout
    await h.core.executions.retry(exe)
    again = await h.waiting(exe, "ready")  # a new wait of 60 s, not the old timed-out one
    assert again["status"] == "running"
    await h.publish("deployment.created", {"deployment_id": "dep_7"})
    assert (await h.done(exe))["status"] == "succeeded"


async def test_cancel_on_cancels_a_superseded_execution(hw: Harness) -> None:
    exe = await hw.run(
        [{"id": "nap", "action": "wait_for_event", "params": {"event_type": "cluster.ready"}}],
        event=REF,
        cancel_on=[{"event_type": "model.updated", "filter": {"model_id": "{{ event.model_id }}"}}],
    )
    await hw.waiting(exe, "nap")
    await hw.publish("model.updated", {"model_id": "m2"})
    assert (await hw.get(exe))["status"] == "running"
    event_id = await hw.publish("model.updated", {"model_id": "m1"})
    done = await hw.done(exe)
    assert done["status"] == "cancelled" and event_id in done["error"]
    assert step(done, "nap")["status"] == "cancelled"


async def test_deployment_create_wait_continues_only_once_ready(h: Harness) -> None:
    await h.core.platform.create_cluster("C1", "c1", "production", status="ready")
    model = await h.core.platform.add_model("llama", "hugging_face", None, None, {})
    steps = [
        {
            "id": "deploy",
            "action": "deployment_create",
            "params": {
                "model_id": model["id"],
                "cluster_id": "c1",
                "deployment_name": "{{ event.name }}",
                "wait": True,
            },
        },
        {"id": "after", "action": "log", "depends_on": ["deploy"], "params": {"message": "up"}},
    ]
    ok = await h.run(
        steps, event={"event_type": "model.added", "data": {"model_id": "m", "name": "a"}}
    )
    bad = await h.run(
        steps, event={"event_type": "model.added", "data": {"model_id": "m", "name": "b"}}
    )
    for exe in (ok, bad):
        await h.waiting(exe, "deploy")
        assert step(await h.get(exe), "after")["status"] == "pending"
    dep_ok = step(await h.get(ok), "deploy")
    deployments = await h.core.platform.list_records("deployments", {}, 10, None)
    by_name = {d["name"]: d["id"] for d in deployments}
    assert dep_ok["status"] == "waiting"
    await h.core.platform.update_deployment(by_name["a"], status="running")
    await h.core.platform.update_deployment(by_name["b"], status="failed", error_message="no GPU")
    done_ok, done_bad = await h.done(ok), await h.done(bad)
    assert done_ok["status"] == "succeeded"
    assert step(done_ok, "deploy")["outputs"] == {
        "deployment_id": by_name["a"],
        "deployment_name": "a",
        "status": "running",
    }
    assert done_bad["status"] == "failed" and "no GPU" in step(done_bad, "deploy")["error"]
    assert step(done_bad, "after")["status"] == "cancelled"


# -- through the API and the SDK -------------------------------------------------------------
def test_the_sdk_shows_a_for_each_steps_items(app_client: Any) -> None:
    pipeline = app_client.pipelines.create(
        name="fan",
        definition={
            "steps": [
                {
                    "id": "each",
                    "action": "set_output",
                    "for_each": "{{ event.models }}",
                    "max_parallel": 2,
                    "params": {"model": "{{ item }}", "at": "{{ index }}"},
                }
            ]
        },
    )
    run = app_client.pipelines.run(
        pipeline.id,
        event={"event_type": "model.added", "data": {"model_id": "m", "models": ["x", "y", "z"]}},
    )
    done = app_client.executions.wait(run.id, timeout=20)
    assert done.status == "succeeded"
    [each] = done.steps
    assert each.items is not None
    assert [(i.index, i.status, i.outputs) for i in each.items] == [
        (0, "succeeded", {"model": "x", "at": 0}),
        (1, "succeeded", {"model": "y", "at": 1}),
        (2, "succeeded", {"model": "z", "at": 2}),
    ]
    assert each.outputs == {
        "items": [{"model": "x", "at": 0}, {"model": "y", "at": 1}, {"model": "z", "at": 2}],
        "count": 3,
        "failed": 0,
    }
    raw = app_client.executions.get(run.id)
    assert raw.steps is not None and [s.step_id for s in raw.steps] == ["each"]
