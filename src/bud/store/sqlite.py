"""SQLite in WAL mode: the embedded default.

SQLite has one writer and answers in microseconds from the page cache, so the repository
keeps one connection and runs statements on it directly from the event loop. Handing every
statement to a driver thread cost more than the statement itself: about 1 ms of thread round
trips per statement against tens of microseconds of work. Transactions take turns on an
``asyncio.Lock``; a transaction's statements never yield to other tasks in between.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.pool import StaticPool

from bud.store.sql import SqlRepository, SqlSession, json_dumps


class SyncConnection:
    """The async face of a synchronous connection, as sessions and migrations use it."""

    def __init__(self, conn: Connection) -> None:
        self.sync = conn

    async def execute(self, stmt: Any, params: Any = None) -> Any:
        return self.sync.execute(stmt, params) if params is not None else self.sync.execute(stmt)

    async def exec_driver_sql(self, sql: str) -> Any:
        return self.sync.exec_driver_sql(sql)

    async def run_sync(self, fn: Callable[[Connection], Any]) -> Any:
        return fn(self.sync)


class SqliteSession(SqlSession):
    row_locks = False  # BEGIN IMMEDIATE: one writer at a time already


class SqliteRepository(SqlRepository):
    dialect = "sqlite"
    exclusive = True  # one process per data directory (the flock in bud.services)
    session_class = SqliteSession

    def __init__(self, url: str, clock: Any = None) -> None:
        super().__init__(url, clock)
        self.engine: Engine | None = None
        self._lock: asyncio.Lock | None = None

    async def _connect(self) -> None:
        if self.engine is not None:
            return
        url = self.url.replace("sqlite+aiosqlite://", "sqlite://", 1)
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            json_serializer=json_dumps,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Transactions are begun explicitly below (BEGIN IMMEDIATE), not by the driver.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.execute("PRAGMA foreign_keys=OFF")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        self.engine = engine
        self._lock = asyncio.Lock()

    async def _disconnect(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[SyncConnection]:
        assert self.engine is not None and self._lock is not None, "repository is not open"
        async with self._lock:
            with self.engine.begin() as conn:
                yield SyncConnection(conn)

    def insert(self, table: Table) -> Any:
        return sqlite_insert(table)
