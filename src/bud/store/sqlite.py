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
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.pool import StaticPool

from bud.store.hot import HotSession
from bud.store.sql import SqlRepository, SqlSession, json_dumps

log = logging.getLogger("bud.store")


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


class _Checkpointer(threading.Thread):
    """Copies committed pages from the WAL into the database file, on a thread of its own.

    A commit then only appends to the WAL; without this, every thousandth commit on the event
    loop would stop to copy a thousand pages and flush the file (SQLite's autocheckpoint). The
    WAL is checkpointed every ``interval`` seconds, and truncated when the store closes.
    """

    def __init__(self, path: str, interval: float = 0.1) -> None:
        super().__init__(name="bud-sqlite-checkpoint", daemon=True)
        self.path = path
        self.interval = interval
        self._closing = threading.Event()

    def run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout=10000")
            while not self._closing.wait(self.interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    log.exception("WAL checkpoint failed (tried again shortly)")
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            conn.close()

    def close(self) -> None:
        self._closing.set()
        self.join(timeout=10)


class SqliteSession(HotSession):
    row_locks = False  # BEGIN IMMEDIATE: one writer at a time already

    @staticmethod
    def _keyed(column: str) -> str:
        return f"+{column}"  # a unary plus: SQLite uses no index for the term

    def __init__(self, conn: Any, repo: Any) -> None:
        super().__init__(conn, repo)
        self._raw = conn.sync.connection.driver_connection  # the sqlite3 connection

    async def _rows(self, sql: str, params: Any = ()) -> list[Any]:
        rows: list[Any] = self._raw.execute(sql, params).fetchall()
        return rows

    async def _one(self, sql: str, params: Any = ()) -> Any:
        return self._raw.execute(sql, params).fetchone()

    async def _run(self, sql: str, params: Any = ()) -> int:
        return int(self._raw.execute(sql, params).rowcount)

    async def _many(self, sql: str, params: Any) -> None:
        self._raw.executemany(sql, params)


class SqliteRepository(SqlRepository):
    dialect = "sqlite"
    exclusive = True  # one process per data directory (the flock in bud.services)
    session_class: type[SqlSession] = SqliteSession

    def __init__(self, url: str, clock: Any = None) -> None:
        super().__init__(url, clock)
        self.engine: Engine | None = None
        self._lock: asyncio.Lock | None = None
        self._conn: Any = None
        self._raw: Any = None
        self._checkpointer: _Checkpointer | None = None

    async def _connect(self) -> None:
        if self.engine is not None:
            return
        url = self.url.replace("sqlite+aiosqlite://", "sqlite://", 1)
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        checkpointer = _Checkpointer(path) if path and path != ":memory:" else None
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
            if checkpointer is not None:  # it copies the WAL into the database, off the loop
                cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.close()

        self.engine = engine
        # One connection for the life of the repository, in autocommit as far as SQLAlchemy
        # knows: transactions are begun and ended on the driver below, which costs a fraction
        # of SQLAlchemy's per-transaction bookkeeping (a pool checkout, a Transaction object).
        self._conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self._raw = self._conn.connection.driver_connection
        self._lock = asyncio.Lock()
        self._checkpointer = checkpointer
        if checkpointer is not None:
            checkpointer.start()

    async def _disconnect(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        if self.engine is not None:
            self._conn.close()
            self.engine.dispose()
            self.engine = None

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[SyncConnection]:
        assert self.engine is not None and self._lock is not None, "repository is not open"
        async with self._lock:
            raw = self._raw
            raw.execute("BEGIN IMMEDIATE")
            try:
                yield SyncConnection(self._conn)
            except BaseException:
                raw.execute("ROLLBACK")
                raise
            raw.execute("COMMIT")

    def insert(self, table: Table) -> Any:
        return sqlite_insert(table)
