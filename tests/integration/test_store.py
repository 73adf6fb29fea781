"""The Store's own suite, run on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from bud.store import Store
from bud.store import schema as t
from bud.store.migrations import LATEST, current_version, migrate


def _event(event_id: str, **extra: object) -> dict[str, object]:
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


def _execution(execution_id: str, **extra: object) -> dict[str, object]:
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
    execution_id: str, step_id: str, position: int, ready_at: float | None = 0.0
) -> dict[str, object]:
    return {
        "execution_id": execution_id,
        "step_id": step_id,
        "position": position,
        "action": "log",
        "status": "pending",
        "attempts": 0,
        "created_at": 1.0,
        "ready_at": ready_at,
    }


async def test_migrations_are_recorded_and_idempotent(store: Store) -> None:
    async with store.begin() as conn:
        assert await current_version(conn) == LATEST
    assert await migrate(store) == LATEST  # a second run changes nothing


async def test_insert_missing_dedupes_on_the_unique_key(store: Store) -> None:
    async with store.transaction() as tx:
        assert await tx.insert_missing(t.events, [_event("e1"), _event("e2")], "event_id") == {
            "e1",
            "e2",
        }
    async with store.transaction() as tx:
        assert await tx.insert_missing(t.events, [_event("e2"), _event("e3")], "event_id") == {"e3"}
        rows = await tx.list(t.events, order="seq", descending=False)
    assert [r["event_id"] for r in rows] == ["e1", "e2", "e3"]
    assert rows[0]["data"] == {"model_id": "e1", "nested": {"a": [1, 2]}}  # JSON round-trips


async def test_failed_transaction_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.insert(t.events, _event("e1"))
            raise RuntimeError("boom")
    async with store.read() as tx:
        assert await tx.count(t.events) == 0


async def test_list_pages_with_a_cursor(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.insert(t.executions, [_execution(f"exe_{i:02d}") for i in range(7)])
    seen: list[str] = []
    after = None
    async with store.read() as tx:
        while True:
            rows = await tx.list(t.executions, limit=3, after=after)
            if not rows:
                break
            seen += [r["id"] for r in rows]
            after = rows[-1]["id"]
    assert seen == [f"exe_{i:02d}" for i in reversed(range(7))]


async def test_update_delete_and_get(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.insert(t.executions, _execution("exe_1"))
        assert (
            await tx.update(t.executions, {"status": "running"}, t.executions.c.id == "exe_1") == 1
        )
        assert await tx.update(t.executions, {"status": "x"}, t.executions.c.id == "nope") == 0
        row = await tx.get(t.executions, id="exe_1")
        assert row is not None and row["status"] == "running"
        assert await tx.delete(t.executions, t.executions.c.id == "exe_1") == 1
        assert await tx.get(t.executions, id="exe_1") is None


async def test_one_execution_per_trigger_and_event(store: Store) -> None:
    async with store.transaction() as tx:
        first = await tx.insert_missing(
            t.executions, [_execution("exe_a", trigger_id="trig_1", event_id="evt_1")], "id"
        )
        second = await tx.insert_missing(
            t.executions, [_execution("exe_b", trigger_id="trig_1", event_id="evt_1")], "id"
        )
        manual = await tx.insert_missing(
            t.executions, [_execution("exe_c"), _execution("exe_d")], "id"
        )
    assert first == {"exe_a"} and second == set() and manual == {"exe_c", "exe_d"}


async def test_claim_takes_ready_steps_once_and_counts_attempts(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.insert(t.executions, _execution("exe_1"))
        await tx.insert(
            t.steps,
            [
                _step("exe_1", "a", 0),
                _step("exe_1", "b", 1, ready_at=None),
                _step("exe_1", "c", 2, ready_at=50.0),
            ],
        )
    async with store.transaction() as tx:
        claimed = await tx.claim_steps("w1", now=10.0, lease_seconds=5.0, limit=10)
    assert [(r["step_id"], r["attempts"], r["lease_owner"]) for r in claimed] == [("a", 1, "w1")]
    async with store.transaction() as tx:
        assert await tx.claim_steps("w2", now=11.0, lease_seconds=5.0, limit=10) == []
    # the lease of w1 runs out: w2 takes the step again, as a second attempt
    async with store.transaction() as tx:
        again = await tx.claim_steps("w2", now=16.0, lease_seconds=5.0, limit=10)
    assert [(r["step_id"], r["attempts"], r["lease_owner"]) for r in again] == [("a", 2, "w2")]
    async with store.transaction() as tx:
        later = await tx.claim_steps("w3", now=60.0, lease_seconds=100.0, limit=10)
    # c became due; a's second lease (until 21) ran out too
    assert sorted(r["step_id"] for r in later) == ["a", "c"]


async def test_claim_respects_max_parallel_and_closed_executions(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.insert(
            t.executions,
            [
                _execution("exe_1", max_parallel=2),
                _execution("exe_2", status="cancelled", max_parallel=None),
            ],
        )
        await tx.insert(t.steps, [_step("exe_1", s, i) for i, s in enumerate("abcd")])
        await tx.insert(t.steps, [_step("exe_2", "a", 0)])
    async with store.transaction() as tx:
        claimed = await tx.claim_steps("w1", now=10.0, lease_seconds=30.0, limit=10)
    assert sorted(r["step_id"] for r in claimed) == ["a", "b"]
    assert {r["execution_id"] for r in claimed} == {"exe_1"}


async def test_concurrent_claims_never_share_a_step(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.insert(t.executions, _execution("exe_1"))
        await tx.insert(t.steps, [_step("exe_1", f"s{i}", i) for i in range(30)])

    async def claimer(name: str) -> list[str]:
        got: list[str] = []
        for _ in range(10):
            async with store.transaction() as tx:
                got += [r["step_id"] for r in await tx.claim_steps(name, 10.0, 30.0, 2)]
        return got

    results = await asyncio.gather(*(claimer(f"w{i}") for i in range(4)))
    everything = [s for r in results for s in r]
    assert len(everything) == len(set(everything)) == 30


async def test_renew_lease_only_for_the_owner(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.insert(t.executions, _execution("exe_1"))
        await tx.insert(t.steps, [_step("exe_1", "a", 0)])
        await tx.claim_steps("w1", now=10.0, lease_seconds=5.0, limit=1)
        await tx.renew_leases("w2", [("exe_1", "a")], until=100.0)
        row = await tx.get(t.steps, execution_id="exe_1", step_id="a")
        assert row is not None and row["lease_expires_at"] == 15.0
        await tx.renew_leases("w1", [("exe_1", "a")], until=100.0)
        row = await tx.get(t.steps, execution_id="exe_1", step_id="a")
        assert row is not None and row["lease_expires_at"] == 100.0
