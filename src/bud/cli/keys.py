"""``bud keys``: create, list and revoke API keys.

Through the server's admin API (``/v1/api-keys``, with an admin key in ``--api-key`` /
``BUD_API_KEY``), or, with ``--data-dir`` or ``--database-url``, directly in the store, which
works whether or not a server is running: that is how the first key of a server is made, and
how a lost admin key is replaced.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table
from rich.text import Text

from bud.cli import render
from bud.cli.common import IdArg, JsonFlag, client_for, fail, group, say

T = TypeVar("T")

keys_app = group("keys", "API keys: create (shown once), list, revoke.")

DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Work on this data directory's store directly, not through a server.",
    ),
]
DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="Work on this database directly (postgresql://... or sqlite:///...).",
    ),
]


def _direct(data_dir: Path | None, database_url: str | None) -> str | None:
    if database_url:
        return database_url
    if data_dir is not None:
        db = data_dir / "bud.db"
        if not db.exists():
            fail(f"--data-dir {data_dir}: no Bud Pipelines store there (no bud.db)")
        return f"sqlite:///{db.resolve()}"
    return None


def _in_store(url: str, work: Callable[[Any], Awaitable[T]]) -> T:
    from bud.services.keys import KeyService
    from bud.store import open_repository

    async def run() -> T:
        async with open_repository(url) as repo:
            return await work(KeyService(repo))

    return asyncio.run(run())


def _api(ctx: typer.Context, method: str, path: str, body: Any = None) -> Any:
    with client_for(ctx) as client:
        return client.request(method, path, json=body)


def _table(items: list[dict[str, Any]]) -> Table:
    table = render.grid("id", "name", "scope", "key", "created", "revoked")
    for k in items:
        table.add_row(
            Text(k["id"]),
            Text(k.get("name") or ""),
            Text(k["scope"]),
            Text(f"{k['prefix']}…"),
            Text(k["created_at"] or ""),
            Text(k.get("revoked_at") or "", style="red"),
        )
    return table


@keys_app.command("create")
def create_key(
    ctx: typer.Context,
    scope: Annotated[
        str, typer.Option("--scope", help="read, write or admin (each includes the lower).")
    ],
    name: Annotated[str | None, typer.Option("--name", help="What the key is for.")] = None,
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a key; it is printed once and cannot be shown again."""
    url = _direct(data_dir, database_url)
    if url:
        created = _in_store(url, lambda keys: keys.create(scope, name))
    else:
        created = _api(ctx, "POST", "/v1/api-keys", {"scope": scope, "name": name})
    if as_json:
        render.print_json(created)
        return
    say(f"Created {created['scope']} key {created['id']}", "green")
    say("Keep it now: it is not stored and cannot be shown again.", "yellow")
    render.out().print(created["key"], markup=False, highlight=False, soft_wrap=True)


@keys_app.command("list")
def list_keys(
    ctx: typer.Context,
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """List keys (their first characters, never the keys)."""
    url = _direct(data_dir, database_url)
    page = _in_store(url, lambda keys: keys.list()) if url else _api(ctx, "GET", "/v1/api-keys")
    if as_json:
        render.print_json(page["items"])
    else:
        render.out().print(_table(page["items"]))


@keys_app.command("revoke")
def revoke_key(
    ctx: typer.Context,
    key_id: IdArg,
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Revoke a key: requests carrying it are refused from now on."""
    url = _direct(data_dir, database_url)
    if url:
        revoked = _in_store(url, lambda keys: keys.revoke(key_id))
    else:
        revoked = _api(ctx, "DELETE", f"/v1/api-keys/{key_id}")
    if as_json:
        render.print_json(revoked)
        return
    say(f"Revoked key {key_id}", "green")
