"""Configuration and catalog: ``bud actions``, ``bud channels``, ``bud secrets``, ``bud health``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from bud.cli import render
from bud.cli.common import (
    IdArg,
    JsonFlag,
    deleted,
    fetch,
    given,
    group,
    printed_json,
    say,
    show,
)

actions_app = group("actions", "The actions pipeline steps can run.")
channels_app = group("channels", "Notification channels: slack, webhook, email.")
secrets_app = group("secrets", "Secrets for templates ({{ secrets.name }}).")


def health(ctx: typer.Context) -> None:
    """Check that the server answers."""
    render.print_json(fetch(ctx, lambda client: client.health()))


def status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The processes sharing the server's store: API nodes and workers, their last heartbeat."""
    answer = fetch(ctx, lambda client: client.health())
    if as_json:
        render.print_json(answer)
        return
    render.processes_table(answer)


@actions_app.command("list")
def list_actions(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List the actions steps can run."""
    actions = fetch(ctx, lambda client: client.actions.list().to_list())
    show(actions, as_json, render.actions_table)


@actions_app.command("show")
def show_action(ctx: typer.Context, name: IdArg, as_json: JsonFlag = False) -> None:
    """Show an action's params, outputs, timeout and retry policy."""
    action = fetch(ctx, lambda client: client.actions.get(name))
    show(action, as_json, render.action_detail)


@channels_app.command("list")
def list_channels(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List notification channels (secrets in URLs masked)."""
    channels = fetch(ctx, lambda client: client.channels.list().to_list())
    show(channels, as_json, render.channels_table)


@channels_app.command("set")
def set_channel(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="slack, webhook or email.")],
    url: Annotated[str | None, typer.Option(help="Webhook URL (slack, webhook).")] = None,
    smtp_url: Annotated[str | None, typer.Option("--smtp-url", help="smtp://... (email).")] = None,
    sender: Annotated[str | None, typer.Option("--from", help="Sender address (email).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Configure a notification channel."""
    config = given(**{"url": url, "smtp_url": smtp_url, "from": sender})
    if not config:
        raise typer.BadParameter("give --url (slack, webhook) or --smtp-url and --from (email)")
    channel = fetch(ctx, lambda client: client.channels.set(name, **config))
    if printed_json(as_json, channel):
        return
    say(
        Text(f"Channel {channel.name} set ", style="green") + Text(render.fmt_value(channel.config))
    )


@channels_app.command("delete")
def delete_channel(ctx: typer.Context, name: IdArg) -> None:
    """Remove a channel configured through the API."""
    fetch(ctx, lambda client: client.channels.delete(name))
    deleted(f"channel {name}")


@secrets_app.command("list")
def list_secrets(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List secret names (values are never shown)."""
    secrets = fetch(ctx, lambda client: client.secrets.list().to_list())
    show(secrets, as_json, render.secrets_table)


@secrets_app.command("set")
def set_secret(
    ctx: typer.Context,
    name: IdArg,
    value: Annotated[
        str | None,
        typer.Argument(
            help="The value; prompted for (hidden) when left out, so it stays out of shell history."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create or replace a secret (its value is never printed, not even with --json)."""
    if value is None:
        value = str(typer.prompt(f"Value for {name}", hide_input=True))
    secret = fetch(ctx, lambda client: client.secrets.set(name, value))
    if not printed_json(as_json, secret):
        say(f"Secret {secret.name} set", "green")


@secrets_app.command("delete")
def delete_secret(ctx: typer.Context, name: IdArg) -> None:
    """Delete a secret."""
    fetch(ctx, lambda client: client.secrets.delete(name))
    deleted(f"secret {name}")
