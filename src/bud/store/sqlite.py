"""SQLite in WAL mode: the embedded default. One connection serialises writers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from bud.store.base import Store, json_dumps


class SqliteStore(Store):
    dialect = "sqlite"

    def _create_engine(self) -> AsyncEngine:
        url = (
            self.url.replace("sqlite://", "sqlite+aiosqlite://", 1)
            if "+aiosqlite" not in self.url
            else self.url
        )
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            json_serializer=json_dumps,
            poolclass=AsyncAdaptedQueuePool,
            pool_size=1,
            max_overflow=0,
            pool_timeout=60,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # aiosqlite's adapter opens transactions itself; we issue BEGIN IMMEDIATE below.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.execute("PRAGMA foreign_keys=OFF")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    def insert_ignore(self, table: Table) -> Any:
        return sqlite_insert(table).on_conflict_do_nothing()
