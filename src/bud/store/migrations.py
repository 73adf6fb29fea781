"""Schema migrations: an ordered list of steps, the applied version kept in ``bud_meta``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select

from bud.store import schema as t
from bud.store.base import Store

Migration = Callable[[Any], Awaitable[None]]


async def _initial(conn: Any) -> None:
    await conn.run_sync(lambda sync: t.metadata.create_all(sync, checkfirst=True))


async def _api_keys(conn: Any) -> None:  # helper:secrets
    await conn.run_sync(lambda sync: t.api_keys.create(sync, checkfirst=True))


MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "initial schema", _initial),
    (2, "api keys", _api_keys),  # helper:secrets
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


async def migrate(store: Store) -> int:
    """Bring the schema to the latest version; return it. Safe to run concurrently on PostgreSQL."""
    async with store.begin() as conn:
        if store.dialect == "postgresql":
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
