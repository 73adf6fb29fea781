"""What every command group shares: the client, option types, input parsing and output.

The conventions every command follows (docs/cli.md, "Conventions"):

- ``--json`` on every command that prints a record or a list: the API's JSON on stdout and
  nothing else, so scripts never scrape text for ids.
- A JSON value (``--filter``, ``--flow``, ``--event``, ``--data``, ``--schema``, ``--example``)
  is inline JSON or ``@path`` (a JSON or YAML file; ``@-`` is stdin). A ``FILE`` argument is a
  path (``-`` is stdin; a leading ``@`` is accepted too).
- Exit codes: 0 done; 1 a refused request, an unreachable server or a failed run; 2 a usage
  mistake. Errors are one ``error: ...`` line on stderr; ``bud --debug`` adds the traceback.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
import yaml
from rich.console import RenderableType
from rich.text import Text
from typer.core import TyperGroup

from bud.cli import render
from bud.client import BudClient

T = TypeVar("T")

# ---------------------------------------------------------------------------------------------
# Reaching the server


@dataclass(frozen=True)
class State:
    """The root options, and how to make a client from them (the root decides, tests swap it)."""

    url: str | None
    api_key: str | None
    connect: Callable[[str | None, str | None], BudClient]
    debug: bool = False


def debugging(ctx: typer.Context) -> bool:
    """Whether ``bud --debug`` was given: errors then keep their traceback."""
    state = ctx.find_object(State)
    return state is not None and state.debug


def client_for(ctx: typer.Context, url: str | None = None) -> BudClient:
    """A client for the server the root options name (``url`` overrides theirs)."""
    state = ctx.find_object(State) or State(None, None, BudClient)
    return state.connect(url or state.url, state.api_key)


# What ``bud serve`` imports beyond the client's own dependencies (the ``server`` extra).
SERVER_MODULES = ("fastapi", "uvicorn", "sqlalchemy", "jinja2", "jsonschema", "orjson")


def require_server_extra(command: str) -> None:
    """Exit 1 with an install hint when the ``server`` extra is missing (a client-only install)."""
    missing = [name for name in SERVER_MODULES if not _importable(name)]
    if missing:
        fail(
            f"`bud {command}` needs the server, which this install lacks "
            f"(no {', '.join(missing)}): pip install 'bud-pipelines[server]'"
        )


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: blocked in sys.modules
        return False


def fetch(ctx: typer.Context, get: Callable[[BudClient], T]) -> T:
    """Open a client, ``get`` something with it (materialised: lists are lists), close it."""
    with client_for(ctx) as client:
        return get(client)


def take(items: Iterable[T], limit: int) -> list[T]:
    """The first ``limit`` items (0: all of them)."""
    return list(items) if limit == 0 else list(islice(items, limit))


class BudGroup(TyperGroup):
    """A command group whose help reads like the docs: ``--demo``, not ``--demo <bool>``, and
    arguments in capitals (``bud pipelines show PIPELINE_ID``).
    """

    # Typed Any: the base class takes typer's vendored click Context, not a public name.
    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _plain_help(command.get_params(ctx))
        return command

    def get_params(self, ctx: Any) -> Any:
        params = super().get_params(ctx)
        _plain_help(params)
        return params


def _plain_help(params: Iterable[Any]) -> None:
    for param in params:
        if param.metavar is not None:
            continue
        if getattr(param, "is_flag", False):
            param.metavar = ""  # a flag takes no value, so it has no type to show
        elif param.param_type_name == "argument" and param.name:
            param.metavar = param.name.upper()


def group(name: str, help: str) -> typer.Typer:
    """A command group such as ``bud pipelines``; shows its help when given no command."""
    return typer.Typer(name=name, help=help, no_args_is_help=True, cls=BudGroup)


# ---------------------------------------------------------------------------------------------
# Options


JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print the API's JSON instead of text (for scripts).")
]
LimitOpt = Annotated[
    int, typer.Option("--limit", "-n", min=0, help="Show at most this many (0: all).")
]
IdArg = Annotated[str, typer.Argument()]
NameOpt = Annotated[str | None, typer.Option(help="New name.")]
DescriptionOpt = Annotated[str | None, typer.Option(help="New description.")]
PipelineOpt = Annotated[str | None, typer.Option("--pipeline", help="Pipeline id.")]
ParamsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        help="Run parameter key=value (value parsed as JSON when it can be); repeatable.",
    ),
]


# ---------------------------------------------------------------------------------------------
# Reading input


def load_file(path: str, what: str = "file") -> Any:
    """A JSON or YAML file (``-`` is stdin; a leading ``@`` is dropped, as for JSON options)."""
    path = path.removeprefix("@") or "-"
    try:
        raw = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    try:
        if path.endswith(".json"):
            return json.loads(raw)
        return yaml.safe_load(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise typer.BadParameter(f"{what} {path} is neither valid JSON nor YAML: {exc}") from exc


def json_arg(value: str, what: str) -> Any:
    """A JSON value given inline, or ``@path`` for a JSON/YAML file (``@-``: stdin)."""
    if value.startswith("@"):
        return load_file(value, what)
    try:
        return json.loads(value)
    except ValueError as exc:
        hint = f"; to read the file, write @{value}" if _is_file(value) else ""
        raise typer.BadParameter(f"{what} is not valid JSON ({exc}): {value}{hint}") from exc


def _is_file(value: str) -> bool:
    try:
        return Path(value).is_file()
    except (OSError, ValueError):  # a name too long, a NUL byte: not a file anyway
        return False


def json_object(value: str, what: str) -> dict[str, Any]:
    """A JSON object given inline or as ``@path``."""
    loaded = json_arg(value, what)
    if not isinstance(loaded, dict):
        raise typer.BadParameter(f"{what} must be a JSON object, got {type(loaded).__name__}")
    return loaded


def optional_object(value: str | None, what: str) -> dict[str, Any] | None:
    """``json_object`` for an option that may be left out."""
    return None if value is None else json_object(value, what)


def parse_value(raw: str) -> Any:
    """A ``k=v`` value: JSON when it parses (``true``, ``3``, ``["a"]``), else the string."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def key_values(items: list[str] | None, option: str) -> dict[str, Any]:
    """Repeated ``key=value`` options as a dict (values via ``parse_value``)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{option} expects key=value, got {item!r}")
        out[key.strip()] = parse_value(raw)
    return out


def given(**options: Any) -> dict[str, Any]:
    """The options that were given (not None)."""
    return {name: value for name, value in options.items() if value is not None}


# ---------------------------------------------------------------------------------------------
# Output


def show(value: T, as_json: bool, view: Callable[[T], RenderableType]) -> None:
    """``value`` as JSON with ``--json``, else as ``view`` renders it (a table, mostly)."""
    if as_json:
        render.print_json(value)
    else:
        render.out().print(view(value))


def printed_json(as_json: bool, value: Any) -> bool:
    """With ``--json``, print ``value`` as the API's JSON and say so (the caller stops there)."""
    if as_json:
        render.print_json(value)
    return as_json


def say(message: str | Text, style: str = "") -> None:
    """One line on stdout, never read as markup."""
    render.out().print(message if isinstance(message, Text) else Text(message, style=style))


def deleted(what: str) -> None:
    """``Deleted <what>``, the answer of every delete command."""
    render.out().print(f"Deleted {what}", markup=False)


def warn(warnings: Iterable[str]) -> None:
    """The server's warnings about what was just saved, in yellow."""
    for warning in warnings:
        say(f"warning: {warning}", "yellow")


def fail(message: str, problems: Any = None, code: int = 1) -> NoReturn:
    """Print ``error: <message>`` (and each listed problem) in red on stderr, then exit."""
    console = render.err()
    console.print(Text("error: ", style="bold red") + Text(message, style="red"))
    if isinstance(problems, list):
        for problem in problems:
            if isinstance(problem, dict):
                path, msg = str(problem.get("path") or ""), str(problem.get("message") or "")
                # The server's messages mostly name their path already: print it once.
                line = msg if not path or msg.startswith(path) else f"{path}: {msg}"
                console.print(Text(f"  {line}", style="red"))
    raise typer.Exit(code)
