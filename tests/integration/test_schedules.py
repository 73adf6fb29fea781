"""Schedule triggers: cron with a time zone or an interval, once per tick, missed-tick policy.

The engine reads time from a manual clock, so ticks come due when the test moves it; the
sweeper's tick pass (``Ticker.fire_due``) is called directly. On the in-memory fake and
SQLite; two engines on one PostgreSQL database race for the same ticks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bud.clock import ManualClock
from bud.engine.schedules import check_schedule, first_tick, plan_tick
from bud.errors import ValidationError
from bud.services import Bud
from bud.settings import Settings
from bud.store import Repository, open_repository
from bud.store.memory import MemoryRepository
from bud.timeutil import parse_iso

LOG = {"steps": [{"id": "a", "action": "log", "params": {"message": "{{ event.data.fired_at }}"}}]}
# Monday 2026-01-05 08:00:00 UTC (09:00 in Berlin)
MONDAY_8_UTC = datetime(2026, 1, 5, 8, tzinfo=UTC).timestamp()


@pytest.fixture(params=["memory", "sqlite"])
def repo_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        shared = MemoryRepository()
        yield lambda: shared
    else:
        url = f"sqlite:///{tmp_path / 'bud.db'}"
        yield lambda: open_repository(url)


class Harness:
    def __init__(self, core: Bud, clock: ManualClock) -> None:
        self.core = core
        self.clock = clock

    async def schedule(self, schedule: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        pipeline = await self.core.pipelines.create("tick", LOG)
        return await self.core.triggers.create(pipeline["id"], None, schedule=schedule, **kwargs)

    async def tick(self) -> list[str]:
        return await self.core.engine.sweeper.ticker.fire_due()

    async def event_of(self, execution_id: str) -> dict[str, Any]:
        execution = await self.core.executions.get(execution_id)
        return await self.core.events.get(execution["event_id"])

    async def executions(self, trigger_id: str) -> list[dict[str, Any]]:
        page = await self.core.executions.list(trigger_id=trigger_id, limit=100)
        return list(page["items"])


async def _start(repo: Repository, clock: ManualClock, tmp_path: Path) -> Bud:
    core = Bud(Settings(data_dir=tmp_path / "data"), repo=repo, clock=clock, run_workers=False)
    await core.start()
    return core


@pytest.fixture
async def h(repo_factory: Any, tmp_path: Path) -> AsyncIterator[Harness]:
    clock = ManualClock(MONDAY_8_UTC - 30)
    core = await _start(repo_factory(), clock, tmp_path)
    try:
        yield Harness(core, clock)
    finally:
        await core.stop()


async def test_an_interval_fires_once_per_tick_with_a_tick_event(h: Harness) -> None:
    trigger = await h.schedule({"interval_seconds": 60}, name="every minute")
    assert trigger["kind"] == "schedule" and trigger["event_type"] == "schedule.tick"
    assert parse_iso(trigger["next_run_at"]) == h.clock.now() + 60
    assert await h.tick() == []  # not due yet
    h.clock.advance(60)
    [first] = await h.tick()
    assert await h.tick() == []  # the same tick again: already fired
    event = await h.event_of(first)
    assert event["event_type"] == "schedule.tick" and event["source"] == "schedule"
    assert event["data"]["trigger_id"] == trigger["id"] == event["data"]["schedule_id"]
    assert parse_iso(event["data"]["scheduled_time"]) == MONDAY_8_UTC + 30
    assert event["data"]["missed_ticks"] == 0
    assert [d["outcome"] for d in event["decisions"]] == ["fired"]  # a stored event
    assert event["executions"] == [first]
    h.clock.advance(60)
    assert len(await h.tick()) == 1
    assert len(await h.executions(trigger["id"])) == 2
    got = await h.core.triggers.get(trigger["id"])
    assert got["fire_count"] == 2 and parse_iso(got["last_tick_at"]) == MONDAY_8_UTC + 90


async def test_cron_follows_its_time_zone(h: Harness) -> None:
    trigger = await h.schedule({"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"})
    due = parse_iso(trigger["next_run_at"])
    assert due == MONDAY_8_UTC  # 09:00 in Berlin in winter is 08:00 UTC
    h.clock.advance(30)
    [execution_id] = await h.tick()
    event = await h.event_of(execution_id)
    assert parse_iso(event["data"]["scheduled_time"]) == MONDAY_8_UTC
    got = await h.core.triggers.get(trigger["id"])
    assert parse_iso(got["next_run_at"]) == MONDAY_8_UTC + 86400  # Tuesday 09:00 Berlin
    # In summer Berlin is UTC+2: the same schedule fires at 07:00 UTC.
    summer = datetime(2026, 7, 6, 6, tzinfo=UTC).timestamp()
    nine = datetime(2026, 7, 6, 9, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
    assert first_tick({"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"}, summer) == nine
    # Friday evening: the next weekday 09:00 is Monday.
    friday = datetime(2026, 1, 9, 18, tzinfo=UTC).timestamp()
    assert first_tick({"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"}, friday) == (
        MONDAY_8_UTC + 7 * 86400
    )


async def test_missed_ticks_fire_the_latest_once_and_count_the_rest(h: Harness) -> None:
    trigger = await h.schedule({"interval_seconds": 60})
    h.clock.advance(60 * 10 + 5)  # down for ten ticks
    [execution_id] = await h.tick()
    assert await h.tick() == []
    event = await h.event_of(execution_id)
    assert event["data"]["missed_ticks"] == 9
    assert parse_iso(event["data"]["scheduled_time"]) == MONDAY_8_UTC - 30 + 600
    got = await h.core.triggers.get(trigger["id"])
    assert got["skipped_ticks"] == 9
    assert parse_iso(got["next_run_at"]) == MONDAY_8_UTC - 30 + 660


async def test_disabled_schedules_do_not_fire_and_resume_from_now(h: Harness) -> None:
    trigger = await h.schedule({"interval_seconds": 60})
    await h.core.triggers.update(trigger["id"], enabled=False)
    assert (await h.core.triggers.get(trigger["id"]))["next_run_at"] is None
    h.clock.advance(600)
    assert await h.tick() == []
    enabled = await h.core.triggers.update(trigger["id"], enabled=True)
    assert parse_iso(enabled["next_run_at"]) == h.clock.now() + 60  # no catch-up of the pause
    h.clock.advance(60)
    assert len(await h.tick()) == 1
    await h.core.triggers.delete(trigger["id"])
    h.clock.advance(60)
    assert await h.tick() == []


async def test_a_restart_neither_repeats_nor_loses_a_tick(
    repo_factory: Any, tmp_path: Path
) -> None:
    clock = ManualClock(MONDAY_8_UTC)
    core = await _start(repo_factory(), clock, tmp_path)
    h = Harness(core, clock)
    trigger = await h.schedule({"interval_seconds": 60})
    clock.advance(60)
    assert len(await h.tick()) == 1
    await core.stop()
    core = await _start(repo_factory(), clock, tmp_path)  # the same store, a new process
    h = Harness(core, clock)
    try:
        assert await h.tick() == []  # that tick was fired before the restart
        clock.advance(60)
        assert len(await h.tick()) == 1
        assert len(await h.executions(trigger["id"])) == 2
    finally:
        await core.stop()


async def test_schedule_input_errors_name_the_field(h: Harness) -> None:
    pipeline = await h.core.pipelines.create("p", LOG)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"schedule": {"cron": "61 * * * *"}}, "schedule.cron"),
        ({"schedule": {"cron": "@daily"}}, "schedule.cron"),
        ({"schedule": {"cron": "0 9 * * *", "timezone": "Mars/Olympus"}}, "schedule.timezone"),
        ({"schedule": {"interval_seconds": 0}}, "schedule.interval_seconds"),
        ({"schedule": {"interval_seconds": "5m"}}, "schedule.interval_seconds"),
        ({"schedule": {"cron": "* * * * *", "interval_seconds": 5}}, "schedule"),
        ({"schedule": {"every": 5}}, "schedule.every"),
        ({"schedule": "0 9 * * *"}, "schedule"),
        ({"schedule": {"interval_seconds": 60}, "event_type": "model.added"}, "event_type"),
        ({"schedule": {"interval_seconds": 60}, "filter": {"a": 1}}, "filter"),
        ({"event_type": "schedule.tick"}, "schedule"),
    ]
    for kwargs, path in cases:
        event_type = kwargs.pop("event_type", None)
        with pytest.raises(ValidationError) as err:
            await h.core.triggers.create(pipeline["id"], event_type, **kwargs)
        assert err.value.details["path"] == path, (kwargs, err.value.message)
    event_trigger = await h.core.triggers.create(pipeline["id"], "model.added")
    with pytest.raises(ValidationError) as err:
        await h.core.triggers.update(event_trigger["id"], schedule={"interval_seconds": 60})
    assert err.value.details["path"] == "schedule"
    assert (await h.core.triggers.get(event_trigger["id"]))["kind"] == "event"


async def test_published_ticks_start_no_schedule_trigger(h: Harness) -> None:
    trigger = await h.schedule({"interval_seconds": 60})
    [env] = await h.core.events.publish(
        [{"event_type": "schedule.tick", "data": {"trigger_id": trigger["id"],
                                                  "scheduled_time": "2026-01-05T08:00:00Z"}}]
    )  # fmt: skip
    assert (await h.core.events.get(env["event_id"]))["executions"] == []


def test_daylight_saving_nights_as_documented() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    at_half_past_two = {"cron": "30 2 * * *", "timezone": "Europe/Berlin"}
    spring = first_tick(at_half_past_two, datetime(2026, 3, 28, 12, tzinfo=berlin).timestamp())
    assert datetime.fromtimestamp(spring, berlin).strftime("%m-%d %H:%M %z") == "03-29 03:00 +0200"
    autumn = first_tick(at_half_past_two, datetime(2026, 10, 24, 12, tzinfo=berlin).timestamp())
    again = first_tick(at_half_past_two, autumn)
    assert again - autumn == 3600  # 02:30 CEST, then 02:30 CET


def test_plan_tick_for_cron_and_interval() -> None:
    interval = check_schedule({"interval_seconds": 300})
    assert plan_tick(interval, 1000.0, 1000.0) == (1000.0, 0, 1300.0)
    assert plan_tick(interval, 1000.0, 2000.0) == (1900.0, 3, 2200.0)
    hourly = check_schedule({"cron": "0 * * * *"})
    start = datetime(2026, 1, 5, 8, tzinfo=UTC).timestamp()
    tick, skipped, following = plan_tick(hourly, start, start + 5 * 3600 + 10)
    assert (tick, skipped, following) == (start + 5 * 3600, 5, start + 6 * 3600)
    assert check_schedule({"cron": "0 9 * * 1-5"}) == {"cron": "0 9 * * 1-5", "timezone": "UTC"}


@pytest.mark.postgres
async def test_two_engines_on_one_postgres_fire_each_tick_once(
    postgres_database: str, tmp_path: Path
) -> None:
    clock = ManualClock(MONDAY_8_UTC)
    one = await _start(open_repository(postgres_database), clock, tmp_path / "one")
    two = await _start(open_repository(postgres_database), clock, tmp_path / "two")
    try:
        a, b = Harness(one, clock), Harness(two, clock)
        triggers = [await a.schedule({"interval_seconds": 60}) for _ in range(3)]
        await two.engine.changed()  # the other process's catalogue has the new triggers
        for _ in range(5):
            clock.advance(60)
            started = await asyncio.gather(a.tick(), b.tick(), a.tick(), b.tick())
            assert sum(len(s) for s in started) == len(triggers)  # one per trigger per tick
        for trigger in triggers:
            executions = await a.executions(trigger["id"])
            ticks = {(await a.event_of(e["id"]))["data"]["scheduled_time"] for e in executions}
            assert len(executions) == len(ticks) == 5
    finally:
        await one.stop()
        await two.stop()


async def test_an_unsaved_trigger_on_schedule_tick_is_refused_by_check(h: Harness) -> None:
    pipeline = await h.core.pipelines.create("p", LOG)
    draft = await h.core.triggers.check_draft(pipeline["id"], "schedule.tick")
    assert draft["valid"] is False and draft["errors"][0]["path"] == "schedule"


async def test_the_flow_rules_and_the_breaker_apply_to_ticks(h: Harness) -> None:
    trigger = await h.schedule(
        {"interval_seconds": 60},
        flow={"circuit_breaker": {"max_fires": 2, "window_seconds": 3600}},
    )
    other = await h.schedule({"interval_seconds": 60})
    fired = []
    for _ in range(3):
        h.clock.advance(60)
        fired.append(len(await h.tick()))
    assert fired == [2, 2, 1]  # the third tick of the first trigger trips its breaker
    got = await h.core.triggers.get(trigger["id"])
    assert got["enabled"] is False and "circuit breaker" in got["tripped_reason"]
    h.clock.advance(60)
    assert len(await h.tick()) == 1  # the other goes on; the tripped one waits
    assert len(await h.executions(trigger["id"])) == 2
    assert len(await h.executions(other["id"])) == 4
