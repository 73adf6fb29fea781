"""Schema migrations with Alembic: the revisions in ``bud/store/revisions/versions``.

Every process runs ``migrate`` when it opens the store, so a new release brings its database up
to date by itself. On PostgreSQL an advisory lock makes processes that start together take turns.
Databases made before Alembic (their version in ``bud_meta.schema_version``) are stamped with the
matching revision first. How to write a revision: docs/operations.md, "Schema migrations".
"""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select

from bud.store import schema as t

SCRIPT_LOCATION = "bud.store:revisions"
LEGACY = {1: "0001_initial", 2: "0002_shared_state"}  # bud_meta schema_version -> revision
_LOCK = 727274  # pg_advisory_xact_lock key: one migrating process at a time


def config(connection: Any = None) -> Config:
    """Alembic's configuration for Bud's revisions, bound to ``connection`` if given."""
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision this release knows."""
    revision = ScriptDirectory.from_config(config()).get_current_head()
    assert revision is not None
    return revision


def _legacy_version(sync: Any) -> int:
    if not inspect(sync).has_table(t.meta.name):
        return 0
    value = sync.execute(select(t.meta.c.value).where(t.meta.c.key == "schema_version")).scalar()
    return int(value) if value is not None else 0


def _current(sync: Any) -> str | None:
    return MigrationContext.configure(sync).get_current_revision()


def _run(sync: Any, target: str, down: bool) -> str | None:
    cfg = config(sync)
    if _current(sync) is None:
        legacy = _legacy_version(sync)
        if legacy:
            command.stamp(cfg, LEGACY[legacy])
            sync.execute(t.meta.delete().where(t.meta.c.key == "schema_version"))
    if down:
        command.downgrade(cfg, target)
    else:
        command.upgrade(cfg, target)
    return _current(sync)


async def _apply(repo: Any, target: str, down: bool) -> str | None:
    async with repo.begin() as conn:
        if repo.dialect == "postgresql":
            await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK})")
        revision: str | None = await conn.run_sync(lambda sync: _run(sync, target, down))
    return revision


async def migrate(repo: Any, target: str = "head") -> str:
    """Bring the schema up to ``target`` (the newest by default); return the revision it is at."""
    revision = await _apply(repo, target, down=False)
    assert revision is not None
    return revision


async def downgrade(repo: Any, target: str) -> str | None:
    """Take the schema back to ``target`` (``"base"``: no tables). For operators and tests."""
    return await _apply(repo, target, down=True)


async def current_revision(repo: Any) -> str | None:
    """The revision the database is at (None before the first migration)."""
    async with repo.begin() as conn:
        revision: str | None = await conn.run_sync(_current)
    return revision


__all__ = ["config", "current_revision", "downgrade", "head", "migrate"]
