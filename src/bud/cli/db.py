"""``bud db``: the store's schema revision, upgrades and downgrades (Alembic, docs/operations.md).

Processes upgrade the schema themselves when they start; these commands are for looking and
for going back a release. They work on the store directly, not through a server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from bud.cli import render
from bud.cli.common import JsonFlag, fail, group, require_server_extra, say

T = TypeVar("T")

db_app = group("db", "The store's schema: current revision, upgrade, downgrade.")

DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="The data directory whose SQLite store to use (else .bud)."),
]
DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url", help="postgresql://... or sqlite:///... (else BUD_DATABASE_URL)."
    ),
]


def _url(data_dir: Path | None, database_url: str | None) -> str:
    from bud.settings import Settings, SettingsError

    try:
        settings = Settings.load(None, database_url=database_url, data_dir=data_dir)
    except SettingsError as exc:
        fail(f"cannot load settings: {exc}")
    url = settings.effective_database_url
    if url.startswith("sqlite") and not Path(url.split(":///", 1)[-1]).exists():
        fail(f"no Bud Pipelines store at {url}")
    return url


def _on_store(url: str, work: Callable[[Any], Awaitable[T]]) -> T:
    require_server_extra("db")
    from alembic.util import CommandError

    from bud.store import open_repository

    async def run() -> T:
        repo = open_repository(url)
        await repo.open(migrate=False)
        try:
            return await work(repo)
        finally:
            await repo.close()

    try:
        return asyncio.run(run())
    except CommandError as exc:
        fail(str(exc))


def _print(revision: str | None, as_json: bool, verb: str) -> None:
    from bud.store.migrations import head

    newest = head()
    if as_json:
        render.print_json({"revision": revision, "head": newest})
    else:
        say(f"{verb} {revision or 'base (no schema)'} (newest: {newest})")


@db_app.command("current")
def current(
    data_dir: DataDirOpt = None, database_url: DatabaseOpt = None, as_json: JsonFlag = False
) -> None:
    """Show the store's schema revision and the newest this release knows."""
    from bud.store.migrations import current_revision

    _print(_on_store(_url(data_dir, database_url), current_revision), as_json, "at")


@db_app.command("upgrade")
def upgrade(
    to: Annotated[str, typer.Option("--to", help="A revision id (else the newest).")] = "head",
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Bring the schema up to a revision (what every process does when it starts)."""
    from bud.store.migrations import migrate

    revision = _on_store(_url(data_dir, database_url), lambda repo: migrate(repo, to))
    _print(revision, as_json, "upgraded to")


@db_app.command("downgrade")
def downgrade(
    to: Annotated[str, typer.Argument(help="The revision to go back to, e.g. 0001_initial.")],
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Take the schema back to a revision, to start an older release (stop every process first)."""
    from bud.store import migrations

    revision = _on_store(_url(data_dir, database_url), lambda repo: migrations.downgrade(repo, to))
    _print(revision, as_json, "downgraded to")
