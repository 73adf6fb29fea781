"""Group commit: units of work that arrive together share one transaction.

A worker finishing many short steps at once would otherwise pay a transaction per step (on
SQLite a write lock and a WAL append, on PostgreSQL two round trips and a WAL flush). Here a
unit of work waits for the transaction in progress to end and then shares the next one with
every unit that queued meanwhile (docs/architecture.md, "Slots and waits").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bud.store.repository import Repository, Session

T = TypeVar("T")
Work = Callable[[Session], Awaitable[Any]]

log = logging.getLogger("bud.store")


class GroupCommit:
    """Runs units of work in shared transactions, at most ``max_batch`` to one.

    ``run(work, key=...)`` returns what ``work(session)`` returned once its transaction has
    committed. Units run in ``key`` order inside a transaction (units of one key in the order
    they came), so two processes that lock the same rows lock them in the same order. When a
    shared transaction fails, each of its units runs again alone, so a unit that fails fails
    only itself. A unit may therefore run twice: it keeps its effects in the session and does
    the rest after ``run`` returns.
    """

    def __init__(
        self, repo: Repository, max_batch: int = 64, parallel: int = 1, min_batch: int = 1
    ) -> None:
        self.repo = repo
        self.max_batch = max_batch
        self.min_batch = max(1, min_batch)
        # Transactions in flight at once: 1 where the database has one writer (SQLite); more
        # where they run side by side (PostgreSQL), so one slow round trip holds up no one.
        self.parallel = max(1, parallel)
        self._queue: list[tuple[str, Work, asyncio.Future[Any]]] = []
        self._flushers: set[asyncio.Task[None]] = set()

    async def run(self, work: Callable[[Session], Awaitable[T]], *, key: str = "") -> T:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((key, work, future))
        if len(self._flushers) < self.parallel:
            flusher = asyncio.create_task(self._flush(), name="bud-group-commit")
            self._flushers.add(flusher)
        result: T = await future
        return result

    async def _flush(self) -> None:
        try:
            await self._flush_queue()
        finally:
            # Leaves the set in the same step as it sees the queue empty (no await between):
            # a unit queued after that starts a new flusher, none is left waiting.
            task = asyncio.current_task()
            if task is not None:
                self._flushers.discard(task)

    async def _flush_queue(self) -> None:
        batch: list[tuple[str, Work, asyncio.Future[Any]]] = []
        try:
            while self._queue:
                # Where transactions run side by side, flushers split what is queued: a
                # batch's statements run one after the other, so sixteen units in one
                # transaction wait for sixteen units' round trips.
                share = -(-len(self._queue) // self.parallel)
                size = min(self.max_batch, max(share, self.min_batch))
                batch = self._queue[:size]
                del self._queue[:size]
                batch.sort(key=lambda unit: unit[0])  # stable: one key's units keep their order
                try:
                    async with self.repo.transaction() as session:
                        results = [await work(session) for _key, work, _future in batch]
                except Exception as exc:
                    if len(batch) == 1:
                        _settle(batch[0][2], exc=exc)
                        continue
                    log.debug("a shared transaction of %d units failed: each alone", len(batch))
                    for _key, work, future in batch:
                        await self._alone(work, future)
                    continue
                for (_key, _work, future), result in zip(batch, results, strict=True):
                    _settle(future, result)
        except BaseException as exc:  # cancelled (the engine stops): nobody waits for ever
            for _key, _work, future in batch:
                _settle(future, exc=exc)
            if len(self._flushers) <= 1:  # no other flusher will take what is queued
                for _key, _work, future in self._queue:
                    _settle(future, exc=exc)
                self._queue.clear()
            raise

    async def _alone(self, work: Work, future: asyncio.Future[Any]) -> None:
        try:
            async with self.repo.transaction() as session:
                result = await work(session)
        except Exception as exc:
            _settle(future, exc=exc)
            return
        _settle(future, result)

    async def drain(self) -> None:
        """Wait until every queued unit has run."""
        while self._flushers:
            await asyncio.gather(*self._flushers, return_exceptions=True)


def _settle(
    future: asyncio.Future[Any], result: Any = None, exc: BaseException | None = None
) -> None:
    if future.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        future.cancel()
    elif exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


__all__ = ["GroupCommit"]
