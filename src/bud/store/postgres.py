"""PostgreSQL through psycopg 3 (async): claims lock rows with FOR UPDATE SKIP LOCKED."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bud.store.base import Store, json_dumps


class PostgresStore(Store):
    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.engine: AsyncEngine | None = None

    async def _open(self) -> None:
        if self.engine is not None:
            return
        url = self.url
        for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
            if url.startswith(prefix):
                url = "postgresql+psycopg://" + url[len(prefix) :]
                break
        self.engine = create_async_engine(
            url,
            json_serializer=json_dumps,
            # helper:hardening: orjson reads numbers beyond 64 bits (jsonb keeps 1e20 as an
            # integer literal) as floats, so a stored float never makes a read fail.
            json_deserializer=orjson.loads,
            pool_size=10,
            max_overflow=10,
            pool_pre_ping=True,
        )

    async def _close(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()
            self.engine = None

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        assert self.engine is not None, "store is not open"
        async with self.engine.begin() as conn:
            yield conn

    def insert_ignore(self, table: Table) -> Any:
        return pg_insert(table).on_conflict_do_nothing()

    def lock_skip(self, stmt: Any) -> Any:
        return stmt.with_for_update(skip_locked=True, of=stmt.selected_columns[0].table)
