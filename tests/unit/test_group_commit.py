"""Group commit (bud.store.group): shared transactions, key order, a failing unit fails alone."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bud.store.group import GroupCommit


class Recorder:
    """A repository stand-in that records which units ran in which transaction."""

    def __init__(self) -> None:
        self.transactions: list[list[str]] = []
        self.committed: list[list[str]] = []

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[list[str]]:
        units: list[str] = []
        self.transactions.append(units)
        yield units  # an exception from the body rolls this one back
        await asyncio.sleep(0)  # the commit: others queue meanwhile
        self.committed.append(units)


def unit(name: str, fail: bool = False) -> Any:
    async def work(session: list[str]) -> str:
        session.append(name)
        if fail:
            raise RuntimeError(f"{name} failed")
        return name.upper()

    return work


async def test_units_that_arrive_together_share_a_transaction_in_key_order() -> None:
    repo = Recorder()
    group = GroupCommit(repo)  # type: ignore[arg-type]
    results = await asyncio.gather(
        group.run(unit("b1"), key="b"),
        group.run(unit("a1"), key="a"),
        group.run(unit("b2"), key="b"),
        group.run(unit("c1"), key="c"),
    )
    assert results == ["B1", "A1", "B2", "C1"]  # each caller gets its own result
    assert repo.committed == [["a1", "b1", "b2", "c1"]]  # one commit, keys sorted, b1 before b2


async def test_a_failing_unit_fails_alone_and_the_others_commit() -> None:
    repo = Recorder()
    group = GroupCommit(repo)  # type: ignore[arg-type]
    ok1 = group.run(unit("a"), key="1")
    bad = group.run(unit("b", fail=True), key="2")
    ok2 = group.run(unit("c"), key="3")
    results = await asyncio.gather(ok1, bad, ok2, return_exceptions=True)
    assert results[0] == "A" and results[2] == "C"
    assert isinstance(results[1], RuntimeError) and str(results[1]) == "b failed"
    # The shared transaction rolled back; then each unit ran alone and the good ones committed.
    assert repo.transactions[0] == ["a", "b"]
    assert repo.committed == [["a"], ["c"]]


async def test_batches_are_bounded_and_later_units_get_the_next_transaction() -> None:
    repo = Recorder()
    group = GroupCommit(repo, max_batch=2)  # type: ignore[arg-type]
    results = await asyncio.gather(*(group.run(unit(f"u{i}"), key=f"{i}") for i in range(5)))
    assert results == [f"U{i}" for i in range(5)]
    assert [len(t) for t in repo.committed] == [2, 2, 1]


async def test_units_waiting_when_the_flusher_is_cancelled_are_cancelled_too() -> None:
    gate = asyncio.Event()

    class Slow(Recorder):
        @contextlib.asynccontextmanager
        async def transaction(self) -> AsyncIterator[list[str]]:
            await gate.wait()
            yield []

    group = GroupCommit(Slow())  # type: ignore[arg-type]
    waiting = asyncio.ensure_future(group.run(unit("a")))
    await asyncio.sleep(0.01)
    assert len(group._flushers) == 1
    next(iter(group._flushers)).cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_with_parallel_transactions_a_slow_one_holds_up_no_other() -> None:
    gate = asyncio.Event()
    done: list[str] = []

    class Mixed(Recorder):
        @contextlib.asynccontextmanager
        async def transaction(self) -> AsyncIterator[list[str]]:
            units: list[str] = []
            yield units
            if "slow" in units:
                await gate.wait()
            done.extend(units)

    group = GroupCommit(Mixed(), parallel=2)  # type: ignore[arg-type]
    slow = asyncio.ensure_future(group.run(unit("slow")))
    await asyncio.sleep(0.01)  # the first transaction has taken "slow" and waits at its commit
    # "fast" commits while "slow" still waits at its commit.
    assert await asyncio.wait_for(group.run(unit("fast")), 5) == "FAST"
    assert done == ["fast"]
    gate.set()
    assert await slow == "SLOW"


async def test_a_unit_right_after_the_last_one_gets_a_transaction() -> None:
    """The one that comes as the flusher sees an empty queue is not left waiting for ever."""
    for parallel in (1, 4):
        repo = Recorder()
        group = GroupCommit(repo, parallel=parallel)  # type: ignore[arg-type]
        assert await group.run(unit("a")) == "A"
        # The flusher that committed "a" no longer counts by the time its caller goes on: a
        # flusher that has finished but still counted would leave "b" queued with no one.
        assert not group._flushers
        assert await asyncio.wait_for(group.run(unit("b")), 2) == "B"
        assert repo.committed == [["a"], ["b"]]
