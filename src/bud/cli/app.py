"""The ``bud`` command line: serve, and manage everything through the SDK.

Only ``bud serve`` imports the server, lazily, so ``bud --help`` and every other command stay
fast and work against a remote server with nothing but the SDK installed. Each command group
lives in its own module; this one holds the root: global options, errors, registration.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from bud.cli.common import State, client_for, fail
from bud.cli.config import actions_app, channels_app, health, secrets_app
from bud.cli.events import event_types_app, events_app
from bud.cli.executions import deliveries_app, executions_app
from bud.cli.keys import keys_app  # helper:secrets
from bud.cli.pipelines import pipelines_app
from bud.cli.platform import clusters_app, deployments_app, models_app
from bud.cli.serve import demo, serve
from bud.cli.triggers import triggers_app
from bud.client import BudClient
from bud.errors import BudError

__all__ = ["app", "client_for", "main", "make_client"]


class _BudGroup(TyperGroup):
    """The root group: turns SDK errors into ``error: <message>`` and exit code 1."""

    # Typed Any: the base class takes typer's vendored click Context, not a public name.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BudError as exc:
            fail(exc.message, problems=exc.details.get("errors"))


app = typer.Typer(
    cls=_BudGroup,
    name="bud",
    help="Bud Pipelines: event triggers with filters start DAG pipelines of actions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold API keys and secret values
)


def make_client(url: str | None, api_key: str | None) -> BudClient:
    """The SDK client every command uses (tests replace this to reach an in-process app)."""
    return BudClient(base_url=url, api_key=api_key)


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            "--url", envvar="BUD_URL", show_default="http://127.0.0.1:8010", help="Server URL."
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="BUD_API_KEY", help="API key, sent as a Bearer token."),
    ] = None,
) -> None:
    """Bud Pipelines: event triggers with filters start DAG pipelines of actions."""
    ctx.obj = State(url, api_key, make_client)  # looked up per run: tests replace it


def main() -> None:
    """Run the ``bud`` command line."""
    app(prog_name="bud")


# The order here is the order ``bud --help`` lists them in.
app.command()(serve)
app.command("demo")(demo)
app.command()(health)
for _group in (
    pipelines_app,
    triggers_app,
    events_app,
    executions_app,
    actions_app,
    models_app,
    clusters_app,
    deployments_app,
    event_types_app,
    channels_app,
    secrets_app,
    deliveries_app,
):
    app.add_typer(_group)
app.add_typer(keys_app)  # helper:secrets
