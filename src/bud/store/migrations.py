"""Schema migrations: an ordered list of steps, the applied version kept in ``bud_meta``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.schema import CreateIndex

from bud.store import schema as t

Migration = Callable[[Any], Awaitable[None]]


async def _initial(conn: Any) -> None:
    await conn.run_sync(lambda sync: t.metadata.create_all(sync, checkfirst=True))


def _add_missing(sync: Any) -> None:
    """Add the columns, tables and indexes of version 2 to a version-1 database."""
    t.metadata.create_all(sync, checkfirst=True)  # new tables
    inspector = inspect(sync)
    for table, column, ddl in (
        (t.steps, "max_attempts", "INTEGER"),
        (t.steps, "attempt_base", "INTEGER NOT NULL DEFAULT 0"),
        (t.executions, "retry_count", "INTEGER NOT NULL DEFAULT 0"),
    ):
        names = {c["name"] for c in inspector.get_columns(table.name)}
        if column not in names:
            sync.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column} {ddl}")
    indexes = {i["name"] for i in inspector.get_indexes(t.attempts.name)}
    for index in t.attempts.indexes:
        if index.name not in indexes:
            sync.execute(CreateIndex(index))


async def _shared_state(conn: Any) -> None:
    await conn.run_sync(_add_missing)


async def _waits(conn: Any) -> None:
    await conn.run_sync(lambda sync: t.waits.create(sync, checkfirst=True))


MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "initial schema", _initial),
    (
        2,
        "attempts at start, catalogue log, fire buckets, processes, ingest errors, api keys",
        _shared_state,
    ),
    (3, "waits for events (wait_for_event, cancel_on)", _waits),
]
LATEST = MIGRATIONS[-1][0]


async def current_version(conn: Any) -> int:
    has_meta = await conn.run_sync(lambda sync: sync.dialect.has_table(sync, t.meta.name))
    if not has_meta:
        return 0
    value = (
        await conn.execute(select(t.meta.c.value).where(t.meta.c.key == "schema_version"))
    ).scalar()
    return int(value) if value is not None else 0


async def migrate(repo: Any) -> int:
    """Bring the schema to the latest version; return it. Safe to run concurrently on PostgreSQL."""
    async with repo.begin() as conn:
        if repo.dialect == "postgresql":
            await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727274)")
        version = await current_version(conn)
        for number, _name, step in MIGRATIONS:
            if number > version:
                await step(conn)
                version = number
        await conn.execute(t.meta.delete().where(t.meta.c.key == "schema_version"))
        await conn.execute(t.meta.insert().values(key="schema_version", value=str(version)))
    return version


__all__ = ["LATEST", "MIGRATIONS", "migrate"]
