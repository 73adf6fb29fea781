"""Flow-control rules on every fire path, on the in-memory repository with a manual clock.

No sleeps: windows pass because the test moves the clock. The same rules run against SQLite
and PostgreSQL in tests/integration/test_flow_control.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bud.clock import ManualClock
from bud.errors import ConflictError
from bud.services import Bud
from bud.settings import Settings
from bud.store.memory import MemoryRepository

LOG = {"steps": [{"id": "a", "action": "log", "params": {"message": "{{ event.model_id }}"}}]}


class Harness:
    def __init__(self, core: Bud, clock: ManualClock) -> None:
        self.core = core
        self.clock = clock

    async def trigger(self, flow: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        pipeline = await self.core.pipelines.create("flow", LOG)
        return await self.core.triggers.create(pipeline["id"], "model.added", flow=flow, **kwargs)

    async def publish(self, model_id: str = "m1", **extra: Any) -> str:
        [env] = await self.core.events.publish(
            [{"event_type": "model.added", "data": {"model_id": model_id}, **extra}]
        )
        return str(env["event_id"])

    async def decision(self, event_id: str, trigger_id: str | None = None) -> dict[str, Any]:
        decisions = (await self.core.events.get(event_id))["decisions"]
        [d] = [x for x in decisions if trigger_id in (None, x["trigger_id"])]
        return dict(d)

    async def outcome(self, event_id: str, trigger_id: str | None = None) -> tuple[str, str | None]:
        d = await self.decision(event_id, trigger_id)
        return d["outcome"], d["reason_code"]

    def started(self, path: str) -> float:
        value = self.core.engine.metrics.registry.get_sample_value(
            "bud_executions_started_total", {"path": path}
        )
        return float(value or 0)


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    clock = ManualClock()
    settings = Settings(data_dir=tmp_path, breaker_max_fires=1000)
    core = Bud(settings, repo=MemoryRepository(), clock=clock, run_workers=False)
    await core.start()
    try:
        yield Harness(core, clock)
    finally:
        await core.stop()


async def test_dedup_window_reopens_once_it_has_passed(h: Harness) -> None:
    await h.trigger({"dedup": {"key": "{{ event.model_id }}", "window_seconds": 60}})
    first = await h.publish()
    h.clock.advance(59)
    assert await h.outcome(await h.publish()) == ("suppressed", "deduplicated")
    h.clock.advance(2)
    assert await h.outcome(first) == ("fired", None)
    assert await h.outcome(await h.publish()) == ("fired", None)


async def test_rate_limit_window_slides(h: Harness) -> None:
    await h.trigger({"rate_limit": {"max": 2, "per_seconds": 60}})
    assert [await h.outcome(await h.publish(f"m{i}")) for i in range(3)] == [
        ("fired", None),
        ("fired", None),
        ("suppressed", "rate_limited"),
    ]
    h.clock.advance(61)
    assert await h.outcome(await h.publish("m9")) == ("fired", None)


async def test_debounce_fires_the_last_event_once_it_is_quiet(h: Harness) -> None:
    trigger = await h.trigger({"debounce": {"seconds": 5}})
    first = await h.publish("m1")
    h.clock.advance(3)
    last = await h.publish("m2")
    assert await h.outcome(first) == ("suppressed", "superseded")
    h.clock.advance(4)  # 4 s after the last event: still within its quiet period
    await h.core.engine.sweeper.sweep()
    assert await h.outcome(last) == ("debounced", "debounced")
    h.clock.advance(1)
    await h.core.engine.sweeper.sweep()
    assert await h.outcome(last) == ("fired", None)
    assert (await h.core.events.get(last))["fired_count"] == 1
    assert (await h.core.triggers.get(trigger["id"]))["fire_count"] == 1
    assert h.started("debounce") == 1


async def test_breaker_trips_inside_its_window_only(h: Harness) -> None:
    trigger = await h.trigger({"circuit_breaker": {"max_fires": 2, "window_seconds": 60}})
    await h.publish("m1")
    h.clock.advance(61)  # the first fire leaves the window
    assert [await h.outcome(await h.publish(f"m{i}")) for i in (2, 3, 4)] == [
        ("fired", None),
        ("fired", None),
        ("suppressed", "circuit_open"),
    ]
    tripped = await h.core.triggers.get(trigger["id"])
    assert tripped["enabled"] is False
    events = await h.core.events.list(event_type="trigger.tripped")
    assert [e["data"]["trigger_id"] for e in events["items"]] == [trigger["id"]]
    await h.core.triggers.update(trigger["id"], enabled=True)  # a fresh window
    assert await h.outcome(await h.publish("m5")) == ("fired", None)


async def test_replay_meets_rate_limit_dedup_and_chain_depth(h: Harness) -> None:
    limited = await h.trigger({"rate_limit": {"max": 1, "per_seconds": 60}})
    first = await h.publish("m1")
    replay = await h.core.insights.replay(
        event_ids=[first], trigger_id=limited["id"], bypass_dedup=True
    )
    assert [(d["outcome"], d["reason_code"]) for d in replay["decisions"]] == [
        ("suppressed", "rate_limited")
    ]
    h.clock.advance(61)
    replay = await h.core.insights.replay(
        event_ids=[first], trigger_id=limited["id"], bypass_dedup=True
    )
    assert replay["fired"] == 1 and h.started("replay") == 1
    assert (await h.core.triggers.get(limited["id"]))["fire_count"] == 2

    deduped = await h.trigger({"dedup": {"key": "{{ event.model_id }}", "window_seconds": 600}})
    other = await h.publish("m2")
    again = await h.core.insights.replay(event_ids=[other], trigger_id=deduped["id"])
    assert [d["reason_code"] for d in again["decisions"]] == ["already_fired"]
    # bypass_dedup skips both the one-per-event rule and the dedup window
    bypass = await h.core.insights.replay(
        event_ids=[other], trigger_id=deduped["id"], bypass_dedup=True
    )
    assert bypass["fired"] == 1

    deep = await h.publish("m3", depth=99)
    assert await h.outcome(deep, limited["id"]) == ("suppressed", "chain_depth")
    replayed = await h.core.insights.replay(event_ids=[deep], trigger_id=limited["id"])
    assert [d["reason_code"] for d in replayed["decisions"]] == ["chain_depth"]


async def test_debounced_fire_meets_breaker_and_concurrency(h: Harness) -> None:
    trigger = await h.trigger(
        {
            "debounce": {"seconds": 5, "key": "{{ event.model_id }}"},
            "concurrency": {"policy": "skip"},
        }
    )
    a = await h.publish("m1")
    h.clock.advance(6)
    await h.core.engine.sweeper.sweep()
    assert await h.outcome(a) == ("fired", None)
    # The first execution is still open (no workers here): the next debounced fire is skipped.
    b = await h.publish("m2")
    h.clock.advance(6)
    await h.core.engine.sweeper.sweep()
    assert await h.outcome(b) == ("suppressed", "concurrency_skip")

    breaker = await h.trigger(
        {"debounce": {"seconds": 5}, "circuit_breaker": {"max_fires": 1, "window_seconds": 600}}
    )
    await h.core.triggers.update(trigger["id"], enabled=False)
    c = await h.publish("m3")
    h.clock.advance(6)
    await h.core.engine.sweeper.sweep()
    assert await h.outcome(c, breaker["id"]) == ("fired", None)
    d = await h.publish("m4")
    h.clock.advance(6)
    await h.core.engine.sweeper.sweep()
    assert await h.outcome(d, breaker["id"]) == ("suppressed", "circuit_open")
    assert (await h.core.triggers.get(breaker["id"]))["enabled"] is False


async def test_manual_runs_meet_the_chain_depth_guard(h: Harness) -> None:
    pipeline = await h.core.pipelines.create("manual", LOG)
    ok = await h.core.pipelines.run(
        pipeline["id"], event={"event_type": "model.added", "data": {"model_id": "x"}}
    )
    assert ok.startswith("exe_") and h.started("manual") == 1
    with pytest.raises(ConflictError, match="chain depth 99 exceeds"):
        await h.core.pipelines.run(
            pipeline["id"],
            event={"event_type": "model.added", "data": {"model_id": "x"}, "depth": 99},
        )
