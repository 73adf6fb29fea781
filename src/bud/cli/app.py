"""The ``bud`` command line: serve, and manage everything through the SDK.

Only ``bud serve`` imports the server, lazily, so ``bud --help`` and every other command stay
fast and work against a remote server with nothing but the SDK installed. Each command group
lives in its own module; this one holds the root: global options, errors, registration.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Annotated, Any

import typer

import bud
from bud.cli.common import BudGroup, State, client_for, debugging, fail
from bud.cli.config import actions_app, channels_app, health, secrets_app, status
from bud.cli.db import db_app
from bud.cli.events import event_types_app, events_app
from bud.cli.executions import deliveries_app, executions_app
from bud.cli.hooks import hooks_app
from bud.cli.keys import keys_app
from bud.cli.pipelines import pipelines_app
from bud.cli.platform import clusters_app, deployments_app, models_app, monitors_app
from bud.cli.serve import demo, serve
from bud.cli.triggers import triggers_app
from bud.cli.worker import worker
from bud.client import BudClient
from bud.errors import BudError

__all__ = ["app", "client_for", "main", "make_client"]


class _BudGroup(BudGroup):
    """The root group: turns every error into ``error: <message>`` and exit code 1.

    Usage mistakes stay click's (exit 2); ``--debug`` lets errors through with their traceback.
    """

    # Typed Any: the base class takes typer's vendored click Context, not a public name.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except BrokenPipeError:  # the reader went away (``bud ... | head``): stop quietly
            _drop_stdout()
            raise typer.Exit(1) from None
        except BudError as exc:
            if debugging(ctx):
                raise
            fail(exc.message, problems=exc.details.get("errors"))
        except Exception as exc:
            if debugging(ctx):
                raise
            last = traceback.format_exception_only(exc)[-1].strip()
            fail(f"{last} (bud --debug ... shows the traceback)")


def _drop_stdout() -> None:
    # What is still buffered for the closed pipe would fail again at exit: send it nowhere.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test runner's capture)
        pass


app = typer.Typer(
    cls=_BudGroup,
    name="bud",
    help="Bud Pipelines: event triggers with filters start DAG pipelines of actions.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_show_locals=False,  # locals may hold API keys and secret values
)


def make_client(url: str | None, api_key: str | None) -> BudClient:
    """The SDK client every command uses (tests replace this to reach an in-process app)."""
    return BudClient(base_url=url, api_key=api_key)


def _print_version(value: bool) -> None:
    if value:
        print(f"bud {bud.__version__}")
        raise typer.Exit()


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
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an error, not only its message.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Bud Pipelines: event triggers with filters start DAG pipelines of actions."""
    ctx.obj = State(url, api_key, make_client, debug)  # looked up per run: tests replace it


def main() -> None:
    """Run the ``bud`` command line."""
    app(prog_name="bud")


# The order here is the order ``bud --help`` lists them in.
app.command()(serve)
app.command()(worker)
app.command("demo")(demo)
app.command()(health)
app.command()(status)
for _group in (
    pipelines_app,
    triggers_app,
    hooks_app,
    events_app,
    executions_app,
    actions_app,
    models_app,
    clusters_app,
    deployments_app,
    monitors_app,
    event_types_app,
    channels_app,
    secrets_app,
    deliveries_app,
):
    app.add_typer(_group)
app.add_typer(keys_app)
app.add_typer(db_app)
