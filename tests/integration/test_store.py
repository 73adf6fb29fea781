"""The repository's own suite, run on SQLite, on PostgreSQL and on the in-memory fake.

The fake passing the same suite is what lets engine tests trust it (tests/unit/test_flow_rules.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bud.store import Repository, open_repository
from bud.store.records import ExecutionStatus, IngestBatch, lifecycle_snapshot


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "memory"])
async def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """The two SQL families and the in-memory fake."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'bud.db'}"
    elif request.param == "postgres":
        url = request.getfixturevalue("postgres_database")
    else:
        url = "memory://"
    r = open_repository(url)
    await r.open()
    try:
        yield r
    finally:
        await r.close()


def _event(event_id: str, **extra: Any) -> Any:
    return {
        "event_id": event_id,
        "event_type": "model.added",
        "source": "test",
        "timestamp": "t",
        "received_at": 1.0,
        "data": {"model_id": event_id, "nested": {"a": [1, 2]}},
        "depth": 0,
        "test": False,
        "fired_count": 0,
        "candidate_count": 0,
        **extra,
    }


def _execution(execution_id: str, **extra: Any) -> Any:
    return {
        "id": execution_id,
        "pipeline_id": "pipe_1",
        "pipeline_version": 1,
        "origin": "manual",
        "status": "queued",
        "params": {},
        "created_at": 1.0,
        **extra,
    }


def _step(
    execution_id: str, step_id: str, position: int, ready_at: float | None = 0.0, **extra: Any
) -> Any:
    return {
        "execution_id": execution_id,
        "step_id": step_id,
        "position": position,
        "action": "log",
        "status": "pending",
        "attempts": 0,
        "created_at": 1.0,
        "ready_at": ready_at,
        **extra,
    }


async def test_store_ingest_skips_stored_events_and_what_they_decided(repo: Repository) -> None:
    async with repo.transaction() as s:
        assert await s.store_ingest(IngestBatch(events=[_event("e1"), _event("e2")])) == {
            "e1",
            "e2",
        }
    batch = IngestBatch(
        events=[_event("e2"), _event("e3")],
        executions=[
            _execution("exe_2", trigger_id="t", event_id="e2"),
            _execution("exe_3", trigger_id="t", event_id="e3"),
        ],
        steps=[_step("exe_2", "a", 0), _step("exe_3", "a", 0)],
        fires={"t": 2},
    )
    async with repo.transaction() as s:
        assert await s.store_ingest(batch) == {"e3"}
        assert batch.fires == {"t": 1}
        assert await s.get_execution("exe_2") is None
        assert (await s.get_execution("exe_3") or {})["event_id"] == "e3"
        stored = await s.get_event("e1")
        assert stored is not None and stored["data"] == {"model_id": "e1", "nested": {"a": [1, 2]}}


async def test_failed_transaction_leaves_nothing(repo: Repository) -> None:
    with pytest.raises(RuntimeError):
        async with repo.transaction() as s:
            await s.store_ingest(IngestBatch(events=[_event("e1")]))
            raise RuntimeError("boom")
    async with repo.read() as s:
        assert await s.known_event_ids(["e1"]) == set()


async def test_list_pages_with_a_cursor(repo: Repository) -> None:
    async with repo.transaction() as s:
        for i in range(7):
            await s.create_execution(_execution(f"exe_{i:02d}"), [])
    seen: list[str] = []
    after = None
    async with repo.read() as s:
        while True:
            rows = await s.list_executions(limit=3, after=after)
            if not rows:
                break
            seen += [r["id"] for r in rows]
            after = rows[-1]["id"]
    assert seen == [f"exe_{i:02d}" for i in reversed(range(7))]


async def test_one_child_execution_per_parent_key(repo: Repository) -> None:
    async with repo.transaction() as s:
        assert await s.create_execution(_execution("exe_1", parent_key="k"), [], once=True)
        assert not await s.create_execution(_execution("exe_2", parent_key="k"), [], once=True)
        assert await s.execution_by_parent_key("k") == "exe_1"


async def test_claim_takes_ready_steps_once_and_records_attempts(repo: Repository) -> None:
    async with repo.transaction() as s:
        await s.create_execution(
            _execution("exe_1"),
            [_step("exe_1", "a", 0), _step("exe_1", "b", 1, ready_at=None)],
        )
    async with repo.transaction() as s:
        claimed = await s.claim_steps("w1", now=10.0, lease_seconds=5.0, limit=10)
        await s.start_attempts(claimed, "w1", 10.0)
    assert [(c["step_id"], c["attempts"]) for c in claimed] == [("a", 1)]
    async with repo.transaction() as s:
        assert await s.claim_steps("w2", now=11.0, lease_seconds=5.0, limit=10) == []
        attempts = await s.attempts_of("exe_1")
    assert [(a["attempt"], a["status"], a["worker"]) for a in attempts] == [(1, "running", "w1")]
    # The lease runs out: another worker takes the step; the cut-short attempt stays, failed.
    async with repo.transaction() as s:
        again = await s.claim_steps("w2", now=16.0, lease_seconds=5.0, limit=10)
        await s.start_attempts(again, "w2", 16.0)
        attempts = await s.attempts_of("exe_1")
    assert [(c["step_id"], c["attempts"], c["lease_owner"]) for c in again] == [("a", 2, "w2")]
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, "failed"), (2, "running")]
    assert "interrupted" in (attempts[0]["error"] or "")


async def test_claims_put_running_executions_first_and_skip_none_without_that_look(
    repo: Repository,
) -> None:
    async def both() -> None:
        async with repo.transaction() as s:
            await s.create_execution(_execution("exe_q"), [_step("exe_q", "a", 0, ready_at=1.0)])
            await s.create_execution(
                _execution("exe_r", status="running"), [_step("exe_r", "b", 0, ready_at=5.0)]
            )

    await both()
    async with repo.transaction() as s:  # the running execution's step, though ready later
        first = await s.claim_steps("w1", now=10.0, lease_seconds=5.0, limit=1, stragglers=False)
    assert [(c["execution_id"], c["step_id"]) for c in first] == [("exe_r", "b")]
    async with repo.transaction() as s:
        await s.release_steps("w1", [("exe_r", "b")], 10.0)
    async with repo.transaction() as s:  # without the look: still claimed, by readiness
        claimed = await s.claim_steps(
            "w2", now=11.0, lease_seconds=5.0, limit=2, stragglers=False, running_first=False
        )
    assert {(c["execution_id"], c["step_id"]) for c in claimed} == {
        ("exe_q", "a"),
        ("exe_r", "b"),
    }


async def test_finish_attempt_only_for_the_owner_of_that_attempt(repo: Repository) -> None:
    async with repo.transaction() as s:
        await s.create_execution(_execution("exe_1"), [_step("exe_1", "a", 0)])
        claimed = await s.claim_steps("w1", now=10.0, lease_seconds=5.0, limit=1)
        await s.start_attempts(claimed, "w1", 10.0)
    done = {"status": "succeeded", "outputs": {"x": 1}, "finished_at": 11.0}
    async with repo.transaction() as s:
        assert not await s.finish_attempt(("exe_1", "a"), "w2", 1, done, done)  # type: ignore[arg-type]
        assert await s.finish_attempt(("exe_1", "a"), "w1", 1, done, done)  # type: ignore[arg-type]
        steps = await s.steps_of("exe_1")
        attempts = await s.attempts_of("exe_1")
    assert steps[0]["status"] == "succeeded" and steps[0]["outputs"] == {"x": 1}
    assert [(a["status"], a["outputs"]) for a in attempts] == [("succeeded", {"x": 1})]


async def test_finish_and_read_returns_the_steps_as_they_now_are(repo: Repository) -> None:
    async with repo.transaction() as s:
        await s.create_execution(
            _execution("exe_1"), [_step("exe_1", "a", 0), _step("exe_1", "b", 1, ready_at=None)]
        )
        claimed = await s.claim_steps("w1", now=10.0, lease_seconds=5.0, limit=1)
        await s.start_attempts(claimed, "w1", 10.0)
    done = {"status": "succeeded", "outputs": {"x": 1}, "finished_at": 11.0}
    for hold in (False, True):
        async with repo.transaction() as s:  # not the owner: nothing written, nothing read
            assert await s.finish_and_read(("exe_1", "a"), "w2", 1, done, done, hold=hold) is None  # type: ignore[arg-type]
    async with repo.transaction() as s:
        rows = await s.finish_and_read(("exe_1", "a"), "w1", 1, done, done, hold=True)  # type: ignore[arg-type]
        attempts = await s.attempts_of("exe_1")
    assert rows is not None
    assert [(r["step_id"], r["status"], r["outputs"]) for r in rows] == [
        ("a", "succeeded", {"x": 1}),
        ("b", "pending", None),
    ]
    assert [(a["status"], a["outputs"]) for a in attempts] == [("succeeded", {"x": 1})]


async def test_take_steps_claims_the_steps_made_ready_and_starts_their_attempts(
    repo: Repository,
) -> None:
    async with repo.transaction() as s:
        await s.create_execution(
            _execution("exe_1"),
            [
                _step("exe_1", "a", 0, ready_at=None),
                _step("exe_1", "b", 1, ready_at=None),
                _step("exe_1", "c", 2, ready_at=None),
            ],
        )
    async with repo.transaction() as s:
        taken = await s.take_steps("exe_1", ["b", "a"], "w1", 10.0, 5.0)
        attempts = await s.attempts_of("exe_1")
        # Taken steps are running under the taker's lease; the one not named stays pending.
        assert await s.claim_steps("w2", now=11.0, lease_seconds=5.0, limit=10) == []
        steps = {r["step_id"]: r for r in await s.steps_of("exe_1")}
    assert [(r["step_id"], r["attempts"], r["lease_owner"]) for r in taken] == [
        ("a", 1, "w1"),
        ("b", 1, "w1"),
    ]
    assert sorted((a["step_id"], a["status"], a["worker"]) for a in attempts) == [
        ("a", "running", "w1"),
        ("b", "running", "w1"),
    ]
    assert steps["c"]["status"] == "pending" and steps["c"]["ready_at"] is None


async def test_finish_and_take_records_the_step_and_claims_what_follows_at_once(
    repo: Repository,
) -> None:
    async with repo.transaction() as s:
        await s.create_execution(
            _execution("exe_1", status="running"),
            [
                _step("exe_1", "a", 0),
                _step("exe_1", "b", 1, ready_at=None),
                _step("exe_1", "c", 2, ready_at=None),
                _step("exe_1", "d", 3, ready_at=4.0),  # already ready: not taken again
            ],
        )
        claimed = await s.claim_steps("w1", now=10.0, lease_seconds=5.0, limit=1)
        await s.start_attempts(claimed, "w1", 10.0)
    async with repo.transaction() as s:  # the other ready one, by another owner
        more = await s.claim_steps("w2", now=10.0, lease_seconds=5.0, limit=1)
        await s.start_attempts(more, "w2", 10.0)
    assert [c["step_id"] for c in claimed + more] == ["a", "d"]
    done = {"status": "succeeded", "outputs": {"x": 1}, "finished_at": 11.0}
    async with repo.transaction() as s:  # not the owner: nothing written, nothing taken
        assert (
            await s.finish_and_take(("exe_1", "a"), "w2", 1, done, done, ["b"], 11.0, 5.0)  # type: ignore[arg-type]
            is None
        )
    async with repo.transaction() as s:
        found = await s.finish_and_take(
            ("exe_1", "a"),
            "w1",
            1,
            done,
            done,
            ["b", "d"],
            11.0,
            5.0,
            hold=True,  # type: ignore[arg-type]
        )
        attempts = await s.attempts_of("exe_1")
        stored = {r["step_id"]: r for r in await s.steps_of("exe_1")}
    assert found is not None
    rows, taken = found
    assert [(t["step_id"], t["status"], t["attempts"], t["lease_owner"]) for t in taken] == [
        ("b", "running", 1, "w1")
    ]
    assert [(r["step_id"], r["status"]) for r in rows] == [
        ("a", "succeeded"),
        ("b", "running"),
        ("c", "pending"),
        ("d", "running"),
    ]
    assert stored["b"]["status"] == "running" and stored["b"]["ready_at"] == 11.0
    assert stored["c"]["status"] == "pending" and stored["c"]["ready_at"] is None
    assert sorted((a["step_id"], a["status"]) for a in attempts) == [
        ("a", "succeeded"),
        ("b", "running"),
        ("d", "running"),
    ]


@pytest.mark.postgres
async def test_steps_and_executions_are_reached_by_key_when_statistics_were_taken_at_rest(
    postgres_database: str,
) -> None:
    """Statistics taken while nothing runs make the status indexes look cheaper than the
    keys; under load those indexes hold every running step. The hot statements must keep
    to the keys whatever the statistics say (their plans, from auto_explain, show which)."""
    repo = open_repository(postgres_database)
    await repo.open()
    try:
        async with repo.transaction() as s:
            for i in range(300):  # at rest: everything finished
                await s.create_execution(
                    _execution(f"exe_done_{i}", status="succeeded"),
                    [_step(f"exe_done_{i}", x, n, status="succeeded") for n, x in enumerate("abc")],
                )
        async with repo.transaction() as s:
            await s.conn.exec_driver_sql("ANALYZE steps")
            await s.conn.exec_driver_sql("ANALYZE executions")
        async with repo.transaction() as s:  # then a load the statistics know nothing of
            for i in range(300):
                exe = f"exe_busy_{i}"
                await s.create_execution(
                    _execution(exe, status="running"),
                    [
                        _step(exe, "a", 0, status="running", attempts=1, lease_owner="w0"),
                        _step(exe, "b", 1, ready_at=None, lease_owner=None),
                        _step(exe, "c", 2, ready_at=None, lease_owner=None),
                    ],
                )
            await s.create_execution(
                _execution("exe_x", status="queued"),
                [_step("exe_x", "a", 0), _step("exe_x", "b", 1, ready_at=None)],
            )
        plans: list[str] = []
        done = {"status": "succeeded", "outputs": {}, "finished_at": 11.0}
        async with repo.transaction() as s:
            driver = await s._driver()  # type: ignore[attr-defined]
            driver.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))
            for setting in (
                "LOAD 'auto_explain'",
                "SET LOCAL auto_explain.log_min_duration = 0",
                "SET LOCAL auto_explain.log_level = 'notice'",
            ):
                await driver.execute(setting)
            claimed = await s.claim_steps("w1", now=10.0, lease_seconds=5.0, limit=1)
            await s.start_attempts(claimed, "w1", 10.0)
            running = await s.executions_to_run(["exe_x"])
            await s.mark_running_many([("exe_x", None)], 10.0)
            found = await s.finish_and_take(
                ("exe_x", "a"),
                "w1",
                1,
                done,
                done,
                ["b"],
                11.0,
                5.0,
                hold=True,  # type: ignore[arg-type]
            )
            b_done = {**done, "finished_at": 12.0}
            assert await s.finish_attempt(("exe_x", "b"), "w1", 1, b_done, b_done)  # type: ignore[arg-type]
            ended = await s.finish_execution("exe_x", ExecutionStatus.SUCCEEDED, None, 12.0)
        assert [c["step_id"] for c in claimed] == ["a"] and running[0]["id"] == "exe_x"
        assert found is not None and [t["step_id"] for t in found[1]] == ["b"]
        assert ended is not None and ended["status"] == "succeeded"
        # The claim's scans for ready steps walk a status index by design (ready steps,
        # running executions); every other statement keeps to the keys.
        keyed = [p for p in plans if "e.max_parallel, e.pipeline_id FROM" not in p]
        assert len(keyed) >= 6, plans
        assert any("WITH h AS" in p and "steps_pkey" in p for p in keyed)  # finish_and_take's
        for plan in keyed:
            assert "ix_steps_ready" not in plan and "ix_executions_status" not in plan, plan
    finally:
        await repo.close()


async def test_a_claim_reads_its_executions_and_their_steps_at_once(repo: Repository) -> None:
    async with repo.transaction() as s:
        for name in ("exe_1", "exe_2"):
            await s.create_execution(
                _execution(name), [_step(name, "a", 0), _step(name, "b", 1, ready_at=None)]
            )
        claimed = await s.claim_steps("w1", now=10.0, lease_seconds=5.0, limit=10)
        assert sorted((c["execution_id"], c["step_id"]) for c in claimed) == [
            ("exe_1", "a"),
            ("exe_2", "a"),
        ]
        found = await s.executions_to_run(["exe_2", "exe_1", "exe_2", "missing"])
        steps = await s.steps_of_many(["exe_1", "exe_2"])
    assert sorted(e["id"] for e in found) == ["exe_1", "exe_2"]
    assert {k: [r["step_id"] for r in v] for k, v in steps.items()} == {
        "exe_1": ["a", "b"],
        "exe_2": ["a", "b"],
    }


async def test_end_execution_queues_the_lifecycle_note_of_the_ended_row(repo: Repository) -> None:
    event = {"event_id": "evt_1", "event_type": "model.added", "depth": 2, "correlation_id": "c"}
    async with repo.transaction() as s:
        await s.create_execution(
            _execution("exe_1", event=event, event_id="evt_1", started_at=2.5),
            [_step("exe_1", "a", 0)],
        )
        ended = await s.end_execution("exe_1", ExecutionStatus.FAILED, "step a failed", 12.25)
        assert await s.end_execution("exe_1", ExecutionStatus.SUCCEEDED, None, 13.0) is None
        notes = await s.take_lifecycle(10)
    assert ended is not None and ended["status"] == "failed"
    assert [(n["execution_id"], n["status"]) for n in notes] == [("exe_1", "failed")]
    assert notes[0]["execution"] == lifecycle_snapshot(ended)
    assert notes[0]["execution"]["event"] == {
        "event_type": "model.added",
        "depth": 2,
        "correlation_id": "c",
    }


async def test_finish_execution_returns_the_closed_execution_once(repo: Repository) -> None:
    async with repo.transaction() as s:
        await s.create_execution(_execution("exe_1"), [_step("exe_1", "a", 0)])
        ended = await s.finish_execution("exe_1", ExecutionStatus.SUCCEEDED, None, 12.0)
        again = await s.finish_execution("exe_1", ExecutionStatus.FAILED, "late", 13.0)
    assert ended is not None and ended["status"] == "succeeded" and ended["finished_at"] == 12.0
    assert again is None


async def test_claim_respects_max_parallel_and_closed_executions(repo: Repository) -> None:
    async with repo.transaction() as s:
        await s.create_execution(
            _execution("exe_1", max_parallel=2),
            [_step("exe_1", c, i) for i, c in enumerate("abcd")],
        )
        await s.create_execution(_execution("exe_2", status="cancelled"), [_step("exe_2", "a", 0)])
    async with repo.transaction() as s:
        claimed = await s.claim_steps("w1", now=10.0, lease_seconds=30.0, limit=10)
    assert sorted(c["step_id"] for c in claimed) == ["a", "b"]
    assert {c["execution_id"] for c in claimed} == {"exe_1"}


async def test_concurrent_claims_never_share_a_step(repo: Repository) -> None:
    async with repo.transaction() as s:
        await s.create_execution(
            _execution("exe_1"), [_step("exe_1", f"s{i}", i) for i in range(30)]
        )

    async def claimer(name: str) -> list[str]:
        got: list[str] = []
        for _ in range(20):
            async with repo.transaction() as s:
                got += [r["step_id"] for r in await s.claim_steps(name, 10.0, 30.0, 2)]
        return got

    results = await asyncio.gather(*(claimer(f"w{i}") for i in range(4)))
    everything = [step for got in results for step in got]
    assert sorted(everything) == sorted(f"s{i}" for i in range(30))


async def test_renew_lease_only_for_the_owner(repo: Repository) -> None:
    async with repo.transaction() as s:
        await s.create_execution(_execution("exe_1"), [_step("exe_1", "a", 0)])
        await s.claim_steps("w1", now=10.0, lease_seconds=5.0, limit=1)
    async with repo.transaction() as s:
        assert await s.renew_leases("w2", [("exe_1", "a")], until=100.0) == set()
        assert await s.renew_leases("w1", [("exe_1", "a")], until=100.0) == {("exe_1", "a")}
        assert await s.claim_steps("w3", now=50.0, lease_seconds=5.0, limit=1) == []


async def test_catalogue_changes_are_numbered_in_commit_order(repo: Repository) -> None:
    async with repo.read() as s:
        start = await s.catalogue_version()
    trigger: Any = {
        "id": "trig_1",
        "pipeline_id": "pipe_1",
        "event_type": "model.added",
        "filter": {},
        "enabled": True,
        "created_at": 1.0,
        "updated_at": 1.0,
        "fire_count": 0,
    }
    async with repo.transaction() as s:
        await s.create_trigger(trigger)
    async with repo.transaction() as s:
        await s.update_trigger("trig_1", {"enabled": False})
        await s.put_secret("token", "x", 1.0)
    async with repo.transaction() as s:
        await s.delete_trigger("trig_1")
    async with repo.read() as s:
        changes = await s.catalogue_changes(start)
        assert await s.catalogue_version() == changes[-1].seq
    assert [(c.kind, c.key) for c in changes] == [
        ("trigger", "trig_1"),
        ("trigger", "trig_1"),
        ("config", "secret:token"),
        ("trigger", "trig_1"),
    ]
    assert [c.seq for c in changes] == sorted(c.seq for c in changes)


async def test_flow_state_dedup_window_and_debounce_taken_once(repo: Repository) -> None:
    async with repo.transaction() as s:
        assert await s.claim_dedup("t", "k", "e1", now=10.0, until=20.0) is None
        assert await s.claim_dedup("t", "k", "e2", now=15.0, until=25.0) == "e1"
        assert await s.claim_dedup("t", "k", "e3", now=21.0, until=31.0) is None
        assert await s.put_debounce("t", "k", "e1", until=30.0) is None
        assert await s.put_debounce("t", "k", "e2", until=35.0) == "e1"
    async with repo.transaction() as s:
        assert await s.take_due_debounces(now=34.0, limit=10) == []
        due = await s.take_due_debounces(now=35.0, limit=10)
        assert [d["value"]["event_id"] for d in due] == ["e2"]
        assert await s.take_due_debounces(now=36.0, limit=10) == []


async def test_fire_counts_feed_the_breaker_window(repo: Repository) -> None:
    trigger: Any = {
        "id": "t",
        "pipeline_id": "p",
        "event_type": "model.added",
        "filter": {},
        "enabled": True,
        "created_at": 1.0,
        "updated_at": 1.0,
        "fire_count": 0,
    }
    async with repo.transaction() as s:
        await s.create_trigger(trigger)
        await s.count_fires({"t": 3}, 100.2)
        await s.count_fires({"t": 2}, 100.7)
        await s.count_fires({"t": 4}, 150.0)
    async with repo.read() as s:
        assert await s.recent_fires("t", since=100.0) == 9
        assert await s.recent_fires("t", since=120.0) == 4
        row = await s.get_trigger("t")
    assert row is not None and row["fire_count"] == 9 and row["last_fired_at"] == 150.0


async def test_a_schedule_tick_is_claimed_once(repo: Repository) -> None:
    async with repo.transaction() as s:
        for trigger_id in ("trig_s", "trig_later", "trig_off", "trig_tripped"):
            await s.create_trigger(
                {
                    "id": trigger_id,
                    "pipeline_id": "pipe_1",
                    "event_type": "schedule.tick",
                    "filter": {},
                    "enabled": trigger_id != "trig_tripped",
                    "created_at": 1.0,
                    "updated_at": 1.0,
                    "fire_count": 0,
                    "schedule": {"interval_seconds": 60},
                }
            )
        await s.put_schedule("trig_s", 100.0, 1.0)
        await s.put_schedule("trig_later", 500.0, 1.0)
        await s.put_schedule("trig_off", None, 1.0)
        await s.put_schedule("trig_tripped", 50.0, 1.0)  # due, but its trigger is disabled
    async with repo.read() as s:
        assert [r["trigger_id"] for r in await s.due_schedules(200.0, 10)] == ["trig_s"]
        assert (await s.get_trigger("trig_s") or {}).get("schedule") == {"interval_seconds": 60}

    async def claim() -> bool:
        async with repo.transaction() as s:
            return await s.claim_tick(
                "trig_s", 100.0, tick_at=160.0, next_at=220.0, skipped=1, now=200.0
            )

    assert sorted(await asyncio.gather(claim(), claim(), claim())) == [False, False, True]
    async with repo.read() as s:
        state = (await s.schedules_of(["trig_s", "trig_missing"]))["trig_s"]
        assert await s.due_schedules(200.0, 10) == []
    async with repo.transaction() as s:  # deleting the trigger forgets its schedule
        assert await s.delete_trigger("trig_later")
        assert await s.schedules_of(["trig_later"]) == {}
    assert (state["next_at"], state["last_tick_at"], state["ticks"], state["skipped"]) == (
        220.0,
        160.0,
        1,
        1,
    )
    async with repo.transaction() as s:  # enabling again plans from now, keeping the counts
        await s.put_schedule("trig_s", 900.0, 300.0)
    async with repo.read() as s:
        again = (await s.schedules_of(["trig_s"]))["trig_s"]
    assert (again["next_at"], again["ticks"], again["skipped"]) == (900.0, 1, 1)


async def test_lifecycle_notes_are_taken_once_in_order(repo: Repository) -> None:
    async with repo.transaction() as s:
        for i in range(5):
            status = "failed" if i % 2 else "succeeded"
            await s.queue_lifecycle(_execution(f"exe_{i}", status=status), float(i))

    async def take() -> list[str]:
        async with repo.transaction() as s:
            return [r["execution_id"] for r in await s.take_lifecycle(2)]

    taken = await asyncio.gather(take(), take(), take(), take())
    flat = [e for batch in taken for e in batch]
    assert sorted(flat) == [f"exe_{i}" for i in range(5)]  # each once
    assert all(batch == sorted(batch) for batch in taken)
    with pytest.raises(RuntimeError):  # a taker that fails gives its notes back
        async with repo.transaction() as s:
            await s.queue_lifecycle(
                _execution("exe_9", status="cancelled", error="by request", event=None), 9.0
            )
        async with repo.transaction() as s:
            assert [r["execution_id"] for r in await s.take_lifecycle(10)] == ["exe_9"]
            raise RuntimeError("crash before the event is stored")
    async with repo.transaction() as s:
        [note] = await s.take_lifecycle(10)
    assert (note["execution_id"], note["status"]) == ("exe_9", "cancelled")
    assert (
        note["execution"]["error"] == "by request" and note["execution"]["pipeline_id"] == "pipe_1"
    )


async def test_hooks_are_stored_and_deleted(repo: Repository) -> None:
    row = {"id": "hook_1", "name": "gh", "event_type": "github.push", "secret": "enc:v1:x",
           "created_at": 1.0}  # fmt: skip
    async with repo.transaction() as s:
        await s.insert_hook(row)
    async with repo.read() as s:
        assert await s.get_hook("hook_1") == row
        assert await s.list_hooks() == [row]
    async with repo.transaction() as s:
        assert await s.delete_hook("hook_1") is True
        assert await s.delete_hook("hook_1") is False
        assert await s.get_hook("hook_1") is None


async def test_items_are_added_once_cancelled_while_pending_and_woken_from_waiting(
    repo: Repository,
) -> None:
    async with repo.transaction() as s:
        await s.create_execution(_execution("exe_1"), [_step("exe_1", "each", 0)])
        claimed = await s.claim_steps("w1", now=10.0, lease_seconds=5.0, limit=1)
        await s.start_attempts(claimed, "w1", 10.0)
        assert await s.suspend_step(("exe_1", "each"), "w1", 1, 9e17, {"items": [1, 2]})
        items = [_step("exe_1", f"each[{i}]", 0, ready_at=None) for i in range(3)]
        await s.add_steps(items)
        await s.add_steps(items[:1])  # again: the existing row stays
        assert await s.mark_ready("exe_1", "each[0]", 11.0)
        await s.cancel_steps("exe_1", ["each[1]", "each"], 12.0)  # "each" is waiting: kept
    async with repo.transaction() as s:
        by_id = {r["step_id"]: r for r in await s.steps_of("exe_1")}
        assert {k: v["status"] for k, v in by_id.items()} == {
            "each": "waiting",
            "each[0]": "pending",
            "each[1]": "cancelled",
            "each[2]": "pending",
        }
        assert by_id["each[0]"]["ready_at"] == 11.0 and by_id["each[2]"]["ready_at"] is None
        assert not await s.wake_step(("exe_1", "each[2]"), 13.0, None)  # not waiting
        assert await s.wake_step(("exe_1", "each"), 13.0, {"event": {"event_id": "e"}})
        [parent] = [r for r in await s.steps_of("exe_1") if r["step_id"] == "each"]
    assert parent["ready_at"] == 13.0  # its state keeps what it parked with, plus the event
    assert parent["outputs"] == {"__wait__": {"items": [1, 2], "event": {"event_id": "e"}}}


async def test_waits_are_found_by_event_type_and_dropped_per_execution(repo: Repository) -> None:
    def wait(wait_id: str, event_type: str, execution_id: str, at: float) -> dict[str, Any]:
        return {
            "id": wait_id,
            "event_type": event_type,
            "kind": "step",
            "execution_id": execution_id,
            "step_id": "w",
            "filter": {"deployment_id": "d1"},
            "created_at": at,
        }

    async with repo.transaction() as s:
        await s.add_waits(
            [
                wait("w1", "deployment.ready", "exe_1", 2.0),
                wait("w1", "deployment.failed", "exe_1", 2.0),
                wait("w2", "deployment.ready", "exe_2", 1.0),
            ]
        )
        await s.add_waits([wait("w2", "deployment.ready", "exe_2", 1.0)])  # stored once
    async with repo.transaction() as s:
        found = await s.waits_for({"deployment.ready"})
        assert [(w["id"], w["execution_id"]) for w in found] == [("w2", "exe_2"), ("w1", "exe_1")]
        assert found[0]["filter"] == {"deployment_id": "d1"}
        assert await s.waits_for({"model.added"}) == []
        await s.drop_waits("exe_1", {"w1"})
        await s.drop_waits("exe_2")
        assert await s.waits_for({"deployment.ready", "deployment.failed"}) == []


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


async def test_sqlite_checkpoints_off_the_loop_and_leaves_no_wal_on_close(tmp_path: Path) -> None:
    """Commits only append to the WAL; a thread copies it back, and closing truncates it."""
    path = tmp_path / "bud.db"
    repo = open_repository(f"sqlite:///{path}")
    await repo.open()
    for n in range(300):
        async with repo.transaction() as s:
            await s.store_ingest(IngestBatch(events=[_event(f"e{n}")]))
    wal = Path(f"{path}-wal")
    assert _size(wal) > 0
    # The commits did not checkpoint (autocheckpoint is off on the loop's connection); the
    # checkpoint thread has copied the committed pages into the database file within ~0.1 s.
    raw = repo._raw  # type: ignore[attr-defined]
    assert raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    for _ in range(50):
        if _size(path) > 200_000:
            break
        await asyncio.sleep(0.05)
    assert _size(path) > 200_000, "nothing was copied from the WAL into the database"
    await repo.close()
    assert _size(wal) == 0
    again = open_repository(f"sqlite:///{path}")
    await again.open()
    try:
        async with again.read() as s:
            assert await s.known_event_ids(["e0", "e299"]) == {"e0", "e299"}
    finally:
        await again.close()


@pytest.mark.postgres
async def test_connections_the_server_dropped_fail_one_transaction_then_are_renewed(
    postgres_database: str,
) -> None:
    import psycopg

    repo = open_repository(postgres_database)
    await repo.open()
    try:

        async def one() -> None:
            async with repo.transaction() as s:
                await s.get_execution("exe_none")  # a driver statement
                await s.get_pipeline("pipe_none")  # a SQLAlchemy Core one

        await asyncio.gather(*(one() for _ in range(5)))  # five connections in the pool
        # What a server restart does to them: every backend of this database ends.
        with psycopg.connect(postgres_database, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        outcomes = []
        for _ in range(6):
            try:
                await one()
                outcomes.append("ok")
            except Exception as exc:
                outcomes.append(type(exc).__name__)
        assert outcomes[0] != "ok" and outcomes[1:] == ["ok"] * 5, outcomes
    finally:
        await repo.close()
