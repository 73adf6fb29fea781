"""``bud hooks``: inbound webhooks (a signed POST becomes an event). Admin scope."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from bud.cli.common import (
    IdArg,
    JsonFlag,
    deleted,
    fetch,
    group,
    optional_object,
    printed_json,
    say,
    show,
)
from bud.schemas import Hook

hooks_app = group("hooks", "Inbound webhooks: a signed POST to a hook's URL becomes an event.")


def _table(hooks: list[Hook]) -> Table:
    table = Table("id", "name", "event type", "url", "created")
    for h in hooks:
        table.add_row(h.id, h.name or "", h.event_type, h.url, h.created_at)
    return table


def _detail(h: Hook) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for label, value in (
        ("id", h.id),
        ("name", h.name or ""),
        ("event type", h.event_type),
        ("url", h.url),
        ("created", h.created_at),
    ):
        table.add_row(label, value)
    return table


@hooks_app.command("create")
def create_hook(
    ctx: typer.Context,
    event_type: Annotated[
        str, typer.Option("--event-type", help="The custom event type deliveries become.")
    ],
    name: Annotated[str | None, typer.Option(help="A name.")] = None,
    schema: Annotated[
        str | None,
        typer.Option("--schema", help="JSON Schema (or @file) of the deliveries' data."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a hook; prints its URL path and its secret (shown this once)."""
    body = optional_object(schema, "--schema")
    hook = fetch(
        ctx, lambda client: client.hooks.create(event_type=event_type, name=name, schema=body)
    )
    if printed_json(as_json, hook):
        return
    say(Text(f"Created hook {hook.id} ", style="green") + Text(f"({hook.event_type})"))
    say(f"URL:    {hook.url}")
    say(f"Secret: {hook.secret}")
    say(
        "Keep the secret: it is not shown again. Senders sign each body with it "
        "(X-Hub-Signature-256: sha256=<hex HMAC-SHA256>) and send a delivery id.",
        "dim",
    )


@hooks_app.command("list")
def list_hooks(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List hooks (never their secrets)."""
    hooks = fetch(ctx, lambda client: client.hooks.list().to_list())
    show(hooks, as_json, _table)


@hooks_app.command("show")
def show_hook(ctx: typer.Context, hook_id: IdArg, as_json: JsonFlag = False) -> None:
    """Show a hook."""
    hook = fetch(ctx, lambda client: client.hooks.get(hook_id))
    show(hook, as_json, _detail)


@hooks_app.command("delete")
def delete_hook(ctx: typer.Context, hook_id: IdArg) -> None:
    """Delete a hook: its deliveries are refused from now on."""
    fetch(ctx, lambda client: client.hooks.delete(hook_id))
    deleted(f"hook {hook_id}")
