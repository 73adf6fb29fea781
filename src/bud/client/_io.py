"""What the two clients cannot share by dropping ``async``/``await``: pagers and sleeping.

``_async.py`` is the one source of the clients' logic; ``scripts/unasync.py`` writes
``_sync.py`` from it, turning ``AsyncPager`` into ``Pager`` and ``async_sleep`` into ``sleep``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from bud.client._base import PAGE_SIZE, parse_items

__all__ = ["AsyncPager", "Pager", "async_sleep", "sleep"]

M = TypeVar("M", bound=BaseModel)


class _Paging(Generic[M]):
    """A list call's request: the query of its first page, and whether it follows cursors."""

    def __init__(self, model: type[M], params: dict[str, Any], *, paged: bool = True) -> None:
        self._model = model
        self._params = params
        self._paged = paged

    def _first_query(self) -> dict[str, Any]:
        query = dict(self._params)
        if self._paged:
            query["limit"] = PAGE_SIZE
        return query

    def _page(self, payload: Any, query: dict[str, Any]) -> tuple[list[M], bool]:
        """The page's items, and whether another page follows (``query`` moves to it)."""
        items, cursor = parse_items(payload, self._model)
        if not cursor or not self._paged:
            return items, False
        query["cursor"] = cursor
        return items, True


class Pager(_Paging[M]):
    """The objects of a list call, fetched page by page as you iterate.

    Nothing is requested until iteration starts; each new iteration starts from the first page.
    """

    def __init__(
        self,
        fetch: Callable[[dict[str, Any]], Any],
        model: type[M],
        params: dict[str, Any],
        *,
        paged: bool = True,
    ) -> None:
        super().__init__(model, params, paged=paged)
        self._fetch = fetch

    def __iter__(self) -> Iterator[M]:
        query = self._first_query()
        more = True
        while more:
            items, more = self._page(self._fetch(query), query)
            yield from items

    def to_list(self) -> list[M]:
        """Every object, all pages fetched."""
        return list(self)

    def first(self) -> M | None:
        """The first object, or None; fetches one page at most."""
        return next(iter(self), None)


class AsyncPager(_Paging[M]):
    """The objects of a list call, fetched page by page: ``async for`` them, or ``await`` all.

    Nothing is requested until iteration starts; each new iteration starts from the first page.
    """

    def __init__(
        self,
        fetch: Callable[[dict[str, Any]], Awaitable[Any]],
        model: type[M],
        params: dict[str, Any],
        *,
        paged: bool = True,
    ) -> None:
        super().__init__(model, params, paged=paged)
        self._fetch = fetch

    async def __aiter__(self) -> AsyncIterator[M]:
        query = self._first_query()
        more = True
        while more:
            items, more = self._page(await self._fetch(query), query)
            for item in items:
                yield item

    async def to_list(self) -> list[M]:
        """Every object, all pages fetched."""
        return [item async for item in self]

    async def first(self) -> M | None:
        """The first object, or None; fetches one page at most."""
        async for item in self:
            return item
        return None

    def __await__(self) -> Generator[Any, None, list[M]]:
        return self.to_list().__await__()


def sleep(seconds: float) -> None:
    """Block for ``seconds``."""
    time.sleep(seconds)


async def async_sleep(seconds: float) -> None:
    """Yield to the event loop for ``seconds``."""
    await asyncio.sleep(seconds)
