"""PostgreSQL through psycopg 3: claims lock rows with FOR UPDATE SKIP LOCKED."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bud.store.base import Store, json_dumps


class PostgresStore(Store):
    dialect = "postgresql"

    def _create_engine(self) -> AsyncEngine:
        url = self.url
        for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
            if url.startswith(prefix):
                url = "postgresql+psycopg://" + url[len(prefix) :]
                break
        return create_async_engine(
            url, json_serializer=json_dumps, pool_size=10, max_overflow=10, pool_pre_ping=True
        )

    def insert_ignore(self, table: Table) -> Any:
        return pg_insert(table).on_conflict_do_nothing()

    def lock_skip(self, stmt: Any) -> Any:
        return stmt.with_for_update(skip_locked=True, of=stmt.selected_columns[0].table)
