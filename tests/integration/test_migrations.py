"""Schema migrations with Alembic, on a real SQLite file and a real PostgreSQL database.

The revision that alters tables (0002: columns added to ``steps`` and ``executions``) is taken
down and up again with rows in those tables; a database made before Alembic is stamped and
brought up to date; and the migrated schema matches the table definitions exactly.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from typer.testing import CliRunner

from bud.cli.app import app
from bud.store import open_repository
from bud.store import schema as t
from bud.store.migrations import current_revision, downgrade, head, migrate

ADDED = {"steps": {"max_attempts", "attempt_base"}, "executions": {"retry_count"}}
NEW_TABLES = {"api_keys", "catalogue_log", "processes", "trigger_fires"}


async def _columns(repo: Any, table: str) -> set[str]:
    async with repo.begin() as conn:
        cols: set[str] = await conn.run_sync(
            lambda sync: {c["name"] for c in inspect(sync).get_columns(table)}
        )
    return cols


async def _tables(repo: Any) -> set[str]:
    async with repo.begin() as conn:
        names: set[str] = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    return names


async def _sql(repo: Any, sql: str) -> list[Any]:
    async with repo.begin() as conn:
        result = await conn.execute(text(sql))
        return list(result.fetchall()) if result.returns_rows else []


async def _put_rows(repo: Any) -> None:
    await _sql(
        repo,
        "INSERT INTO executions (id, pipeline_id, pipeline_version, origin, status, params,"
        " created_at, delivery, held) VALUES ('exe_1', 'pip_1', 1, 'manual', 'running', '{}',"
        " 1.0, 0, false)",
    )
    await _sql(
        repo,
        "INSERT INTO steps (execution_id, step_id, position, action, status, attempts,"
        " created_at) VALUES ('exe_1', 'a', 0, 'log', 'pending', 0, 1.0)",
    )


async def test_open_brings_a_new_database_to_the_newest_revision(repo: Any) -> None:
    assert await current_revision(repo) == head()
    assert await migrate(repo) == head()  # again: nothing to do
    async with repo.begin() as conn:
        drift = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), t.metadata)
        )
    assert drift == [], f"the revisions and bud/store/schema.py disagree: {drift}"


async def test_the_revision_that_alters_tables_goes_down_and_up_keeping_rows(repo: Any) -> None:
    await _put_rows(repo)
    assert await downgrade(repo, "0001_initial") == "0001_initial"
    for table, added in ADDED.items():
        assert not added & await _columns(repo, table), f"{table} still has {added}"
    assert not NEW_TABLES & await _tables(repo)
    assert await _sql(repo, "SELECT step_id, status FROM steps") == [("a", "pending")]

    assert await migrate(repo) == head()
    for table, added in ADDED.items():
        assert added <= await _columns(repo, table)
    assert await _tables(repo) >= NEW_TABLES
    assert await _sql(repo, "SELECT attempt_base, max_attempts FROM steps") == [(0, None)]
    assert await _sql(repo, "SELECT id, retry_count FROM executions") == [("exe_1", 0)]


async def test_a_database_from_before_alembic_is_stamped_and_upgraded(store_url: str) -> None:
    repo = open_repository(store_url)
    await repo.open()
    await _put_rows(repo)
    await downgrade(repo, "0001_initial")
    # What the release before Alembic left: its own version row and no alembic_version.
    await _sql(repo, "DROP TABLE alembic_version")
    await _sql(repo, "INSERT INTO bud_meta (key, value) VALUES ('schema_version', '1')")
    await repo.close()

    again = open_repository(store_url)
    await again.open()
    try:
        assert await current_revision(again) == head()
        assert ADDED["steps"] <= await _columns(again, "steps")
        assert await _sql(again, "SELECT key FROM bud_meta WHERE key = 'schema_version'") == []
        assert await _sql(again, "SELECT step_id FROM steps") == [("a",)]
    finally:
        await again.close()


def test_bud_db_shows_and_moves_the_revision(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bud.db'}"

    async def make() -> None:
        async with open_repository(url):
            pass

    asyncio.run(make())
    runner = CliRunner()

    def bud(*args: str) -> Any:
        return runner.invoke(app, ["db", *args, "--database-url", url])

    shown = bud("current", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout) == {"revision": head(), "head": head()}
    assert bud("downgrade", "0001_initial").exit_code == 0
    assert json.loads(bud("current", "--json").stdout)["revision"] == "0001_initial"
    unknown = bud("downgrade", "0009_nope")
    assert unknown.exit_code == 1
    assert "0009_nope" in unknown.stderr and "Traceback" not in unknown.output
    assert f"upgraded to {head()}" in bud("upgrade").stdout
