"""The ``bud`` command line: serve, and manage everything through the SDK.

Only ``bud serve`` imports the server, lazily, so ``bud --help`` and every other command stay
fast and work against a remote server with nothing but the SDK installed.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml
from rich.live import Live
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from bud.cli import render
from bud.client import NOT_GIVEN, BudClient
from bud.errors import BudError
from bud.schemas import BacktestResult, DryRunResult, Event, Execution, Model, ReplayResult

__all__ = ["app", "make_client"]


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


def _group(name: str, help: str) -> typer.Typer:
    sub = typer.Typer(name=name, help=help, no_args_is_help=True)
    app.add_typer(sub)
    return sub


pipelines_app = _group("pipelines", "Create, inspect, validate and run pipelines.")
triggers_app = _group("triggers", "Event triggers: which events start which pipeline.")
events_app = _group("events", "Publish events and see which triggers they fired.")
executions_app = _group("executions", "Inspect, watch, cancel and retry executions.")
actions_app = _group("actions", "The actions pipeline steps can run.")
models_app = _group("models", "Models in the built-in platform (adding one emits model.added).")
clusters_app = _group("clusters", "Clusters in the built-in platform.")
deployments_app = _group("deployments", "Deployments in the built-in platform.")
event_types_app = _group("event-types", "The event type catalog.")
channels_app = _group("channels", "Notification channels: slack, webhook, email.")
secrets_app = _group("secrets", "Secrets for templates ({{ secrets.name }}).")
deliveries_app = _group("deliveries", "The record of notification deliveries.")


@dataclass(frozen=True)
class State:
    url: str | None
    api_key: str | None


def make_client(url: str | None, api_key: str | None) -> BudClient:
    """The SDK client every command uses (tests replace this to reach an in-process app)."""
    return BudClient(base_url=url, api_key=api_key)


def client_for(ctx: typer.Context) -> BudClient:
    state = ctx.find_object(State) or State(None, None)
    return make_client(state.url, state.api_key)


def fail(message: str, problems: Any = None, code: int = 1) -> NoReturn:
    """Print ``error: <message>`` (and each listed problem) in red on stderr, then exit."""
    console = render.err()
    console.print(Text("error: ", style="bold red") + Text(message, style="red"))
    if isinstance(problems, list):
        for problem in problems:
            if isinstance(problem, dict):
                path, msg = problem.get("path", ""), problem.get("message", "")
                console.print(Text(f"  {path}: {msg}" if path else f"  {msg}", style="red"))
    raise typer.Exit(code)


# ---------------------------------------------------------------------------------------------
# Reading input


def load_file(path: str, what: str = "file") -> Any:
    """A JSON or YAML file (``-`` is stdin)."""
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
    """A JSON value given inline, or ``@file`` for a JSON/YAML file."""
    if value.startswith("@"):
        return load_file(value[1:], what)
    try:
        return json.loads(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{what} is not valid JSON ({exc}): {value}") from exc


def json_object(value: str, what: str) -> dict[str, Any]:
    loaded = json_arg(value, what)
    if not isinstance(loaded, dict):
        raise typer.BadParameter(f"{what} must be a JSON object, got {type(loaded).__name__}")
    return loaded


def parse_value(raw: str) -> Any:
    """A ``k=v`` value: JSON when it parses (``true``, ``3``, ``["a"]``), else the string."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def key_values(items: list[str] | None, option: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{option} expects key=value, got {item!r}")
        out[key.strip()] = parse_value(raw)
    return out


JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
LimitOpt = Annotated[
    int, typer.Option("--limit", "-n", min=0, help="Show at most this many (0: all).")
]


def _take(items: Any, limit: int) -> list[Any]:
    return list(items) if limit == 0 else list(islice(items, limit))


def _grid(*columns: str, wide: tuple[str, ...] = ()) -> Table:
    """A table whose ``wide`` columns fold long values and the rest stay on one line."""
    table = Table(show_edge=False, header_style="bold", pad_edge=False)
    for name in columns:
        if name in wide:
            table.add_column(name, overflow="fold", min_width=12)
        else:
            table.add_column(name, no_wrap=True, overflow="fold")
    return table


# ---------------------------------------------------------------------------------------------
# Root


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
    ctx.obj = State(url, api_key)


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(show_default="127.0.0.1", help="Interface to listen on.")
    ] = None,
    port: Annotated[int | None, typer.Option(show_default="8010", help="Port.")] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", show_default="./.bud", help="Where the data lives.")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            show_default="SQLite in the data dir",
            help="sqlite:///... or postgresql://...",
        ),
    ] = None,
    demo: Annotated[
        bool,
        typer.Option("--demo", help="Load the example pipelines, triggers and cluster at start."),
    ] = False,
    config: Annotated[
        Path | None, typer.Option("--config", help="A YAML settings file (else BUD_CONFIG).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, show_default="16", help="Concurrent steps per process.")
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning or error.")
    ] = "info",
) -> None:
    """Run the server: REST API under /v1/, the web UI at /, /healthz and /metrics."""
    import logging

    from bud.settings import Settings

    level = log_level.lower()
    if level not in ("critical", "error", "warning", "info", "debug", "trace"):
        raise typer.BadParameter(f"unknown log level {log_level!r}", param_hint="--log-level")
    try:
        settings = Settings.load(
            config,
            host=host,
            port=port,
            data_dir=data_dir,
            database_url=database_url,
            demo=True if demo else None,
            workers=workers,
        )
    except (OSError, ValueError, yaml.YAMLError) as exc:
        fail(f"cannot load settings: {exc}")
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from bud import server

    try:
        server.run(settings, log_level=level)
    except RuntimeError as exc:  # e.g. refusing a non-loopback host without API keys
        fail(str(exc))


@app.command("demo")
def demo_command(
    ctx: typer.Context,
    url: Annotated[
        str | None, typer.Option("--url", help="Server URL (overrides the global --url).")
    ] = None,
) -> None:
    """Load the product document's example pipelines, triggers and cluster (idempotent)."""
    from bud.cli.demo import load_demo

    state = ctx.find_object(State) or State(None, None)
    with make_client(url or state.url, state.api_key) as client:
        result = load_demo(client)
    console = render.out()
    for line in result["created"]:
        console.print(Text("created  ", style="green") + Text(line))
    for line in result["existing"]:
        console.print(Text("exists   ", style="dim") + Text(line))
    console.print()
    console.print("Next, try:")
    for cmd in (
        "bud models add Llama-3.2-1B --source hugging_face --meta auto_deploy=true",
        "bud executions watch <execution id printed above>",
        "bud deployments list",
        "bud deployments update <deployment id> --status failed --error-message 'OOM'",
        "bud events list",
    ):
        console.print(Text(f"  {cmd}", style="cyan"))


@app.command()
def health(ctx: typer.Context) -> None:
    """Check that the server answers."""
    with client_for(ctx) as client:
        render.print_json(client.health())


# ---------------------------------------------------------------------------------------------
# Pipelines


def _pipeline_file(
    file: str, name: str | None, description: str | None
) -> tuple[str | None, dict[str, Any] | None, str | None]:
    data = load_file(file, "pipeline file")
    if not isinstance(data, dict):
        raise typer.BadParameter(
            f"{file} must hold a mapping: {{name, definition}} or {{steps: [...]}}"
        )
    if "definition" in data:
        definition = data["definition"]
        name = name or data.get("name")
        description = description if description is not None else data.get("description")
    elif "steps" in data:
        definition = data
    else:
        raise typer.BadParameter(f"{file} has neither 'definition' nor 'steps'")
    if not isinstance(definition, dict):
        raise typer.BadParameter(f"the definition in {file} must be a mapping")
    return name, definition, description


@pipelines_app.command("create")
def pipelines_create(
    ctx: typer.Context,
    file: Annotated[
        str,
        typer.Argument(
            help="YAML/JSON: {name, description, definition} or a "
            "bare definition ({steps: [...]}); - for stdin."
        ),
    ],
    name: Annotated[str | None, typer.Option(help="Name (required for a bare definition).")] = None,
    description: Annotated[str | None, typer.Option(help="Description.")] = None,
) -> None:
    """Create a pipeline from a file."""
    name, definition, description = _pipeline_file(file, name, description)
    if not name:
        raise typer.BadParameter("the pipeline needs a name: put one in the file or pass --name")
    assert definition is not None
    with client_for(ctx) as client:
        pipeline = client.pipelines.create(
            name=name, definition=definition, description=description
        )
    console = render.out()
    console.print(
        Text(f"Created pipeline {pipeline.id} ", style="green")
        + Text(f"({pipeline.name}, version {pipeline.version})")
    )
    console.print(
        Text(
            f"Add a trigger: bud triggers create --pipeline {pipeline.id} --event-type model.added",
            style="dim",
        )
    )


@pipelines_app.command("list")
def pipelines_list(ctx: typer.Context, as_json: JsonFlag = False, limit: LimitOpt = 0) -> None:
    """List pipelines."""
    with client_for(ctx) as client:
        pipelines = _take(client.pipelines.list(), limit)
    if as_json:
        render.print_json(pipelines)
    else:
        render.out().print(render.pipelines_table(pipelines))


@pipelines_app.command("show")
def pipelines_show(
    ctx: typer.Context, pipeline_id: Annotated[str, typer.Argument()], as_json: JsonFlag = False
) -> None:
    """Show a pipeline: its steps and triggers."""
    with client_for(ctx) as client:
        pipeline = client.pipelines.get(pipeline_id)
        triggers = client.event_triggers.list(pipeline_id=pipeline_id).to_list()
    if as_json:
        render.print_json({**render.to_jsonable(pipeline), "triggers": triggers})
        return
    console = render.out()
    console.print(render.pipeline_detail(pipeline))
    console.print()
    console.print(render.definition_table(pipeline.definition))
    console.print()
    if triggers:
        console.print(render.triggers_table(triggers))
    else:
        console.print(Text("No triggers: it runs only by hand (bud pipelines run).", style="dim"))


@pipelines_app.command("update")
def pipelines_update(
    ctx: typer.Context,
    pipeline_id: Annotated[str, typer.Argument()],
    file: Annotated[str | None, typer.Argument(help="YAML/JSON as for create.")] = None,
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
) -> None:
    """Update a pipeline (a new definition makes a new version)."""
    definition: dict[str, Any] | None = None
    if file is not None:
        name, definition, description = _pipeline_file(file, name, description)
    if name is None and definition is None and description is None:
        raise typer.BadParameter("nothing to change: give a FILE, --name or --description")
    with client_for(ctx) as client:
        pipeline = client.pipelines.update(
            pipeline_id, name=name, definition=definition, description=description
        )
    console = render.out()
    console.print(
        Text(f"Updated pipeline {pipeline.id} ", style="green")
        + Text(f"({pipeline.name}, version {pipeline.version})")
    )
    for warning in pipeline.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"))


@pipelines_app.command("delete")
def pipelines_delete(ctx: typer.Context, pipeline_id: Annotated[str, typer.Argument()]) -> None:
    """Delete a pipeline and its triggers."""
    with client_for(ctx) as client:
        client.pipelines.delete(pipeline_id)
    render.out().print(f"Deleted pipeline {pipeline_id} and its triggers", markup=False)


@pipelines_app.command("validate")
def pipelines_validate(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="YAML/JSON pipeline or bare definition.")],
    as_json: JsonFlag = False,
) -> None:
    """Check a definition without saving it (exit 1 when invalid)."""
    _, definition, _ = _pipeline_file(file, None, None)
    assert definition is not None
    with client_for(ctx) as client:
        result = client.pipelines.validate(definition)
    if as_json:
        render.print_json(result)
    elif result.valid:
        render.out().print(Text("✓ valid", style="green"))
    if not result.valid:
        if not as_json:
            fail(f"{file}: the definition is invalid", problems=result.errors)
        raise typer.Exit(1)


@pipelines_app.command("run")
def pipelines_run(
    ctx: typer.Context,
    pipeline_id: Annotated[str, typer.Argument()],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="Run parameter key=value (value parsed as JSON when it can be); repeatable.",
        ),
    ] = None,
    event: Annotated[
        str | None, typer.Option(help="An event to run with: a JSON/YAML file, or inline JSON.")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow it until it ends; exit 1 unless it succeeds.")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option(help="With --wait: give up after this many seconds.")
    ] = None,
) -> None:
    """Start an execution by hand."""
    params = key_values(param, "--param")
    event_body: dict[str, Any] | None = None
    if event is not None:
        event_body = json_object(
            event if event.lstrip().startswith("{") else f"@{event}", "--event"
        )
    with client_for(ctx) as client:
        execution = client.pipelines.run(pipeline_id, params=params or None, event=event_body)
        render.out().print(Text(f"Started execution {execution.id}", style="green"))
        if wait:
            _follow(client, execution.id, timeout=timeout)
        else:
            render.out().print(Text(f"Follow it: bud executions watch {execution.id}", style="dim"))


@pipelines_app.command("dry-run")
def pipelines_dry_run(
    ctx: typer.Context,
    pipeline_id: Annotated[str, typer.Argument()],
    event: Annotated[
        str | None,
        typer.Option(help="The event to render against: inline JSON, @file, or a file path."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Run parameter key=value; repeatable."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show every step's rendered params (secrets masked) or its error; runs nothing."""
    params = key_values(param, "--param")
    event_body: dict[str, Any] | None = None
    if event is not None:
        event_body = json_object(
            event if event.lstrip().startswith(("{", "@")) else f"@{event}", "--event"
        )
    with client_for(ctx) as client:
        result = client.pipelines.dry_run(pipeline_id, event=event_body, params=params or None)
    if as_json:
        render.print_json(result)
    else:
        _print_dry_run(result)


def _print_dry_run(result: DryRunResult) -> None:
    console = render.out()
    console.print(
        Text(f"Dry run of {result.pipeline_id} (version {result.version}): ", style="bold")
        + Text("nothing was stored or run", style="dim")
    )
    table = _grid(
        "step", "action", "depends on", "runs", "params or error", wide=("params or error",)
    )
    for step in result.steps:
        runs = Text("skip", style="dim") if step.would_skip else Text("yes", style="green")
        if step.condition is not None:
            runs.append(f" (condition {render.fmt_value(step.condition)})", style="dim")
        cell = Text()
        if step.params is not None:
            cell.append(render.fmt_value(step.params))
        if step.error:
            style = "yellow" if step.error.startswith("needs runtime output") else "red"
            cell.append(("\n" if step.params is not None else "") + step.error, style=style)
        table.add_row(
            render.text(step.step_id),
            render.text(step.action),
            render.text(", ".join(step.depends_on)),
            runs,
            cell,
        )
    console.print(table)


# ---------------------------------------------------------------------------------------------
# Triggers


@triggers_app.command("create")
def triggers_create(
    ctx: typer.Context,
    pipeline: Annotated[str, typer.Option("--pipeline", help="Pipeline id.")],
    event_type: Annotated[str, typer.Option("--event-type", help="e.g. model.added.")],
    filter: Annotated[
        str | None,
        typer.Option(
            "--filter", help='JSON object (or @file), e.g. \'{"model_source": "hugging_face"}\'.'
        ),
    ] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it switched off.")] = False,
    name: Annotated[str | None, typer.Option(help="A name.")] = None,
    description: Annotated[str | None, typer.Option(help="A description.")] = None,
) -> None:
    """Create an event trigger."""
    flt = json_object(filter, "--filter") if filter is not None else None
    with client_for(ctx) as client:
        trigger = client.event_triggers.create(
            pipeline_id=pipeline,
            event_type=event_type,
            filter=flt,
            enabled=not disabled,
            name=name,
            description=description,
        )
    console = render.out()
    state = "enabled" if trigger.enabled else "disabled"
    console.print(
        Text(f"Created trigger {trigger.id} ", style="green")
        + Text(f"({trigger.event_type} → {trigger.pipeline_id}, {state})")
    )
    for warning in trigger.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"))


@triggers_app.command("list")
def triggers_list(
    ctx: typer.Context,
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="Pipeline id.")] = None,
    event_type: Annotated[str | None, typer.Option("--event-type")] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enabled/--disabled", help="Only enabled / disabled ones.")
    ] = None,
    as_json: JsonFlag = False,
    limit: LimitOpt = 0,
) -> None:
    """List event triggers."""
    with client_for(ctx) as client:
        triggers = _take(
            client.event_triggers.list(
                pipeline_id=pipeline, event_type=event_type, enabled=enabled
            ),
            limit,
        )
    if as_json:
        render.print_json(triggers)
    else:
        render.out().print(render.triggers_table(triggers))


@triggers_app.command("show")
def triggers_show(
    ctx: typer.Context, trigger_id: Annotated[str, typer.Argument()], as_json: JsonFlag = False
) -> None:
    """Show a trigger."""
    with client_for(ctx) as client:
        trigger = client.event_triggers.get(trigger_id)
    if as_json:
        render.print_json(trigger)
    else:
        render.out().print(render.trigger_detail(trigger))


@triggers_app.command("update")
def triggers_update(
    ctx: typer.Context,
    trigger_id: Annotated[str, typer.Argument()],
    filter: Annotated[
        str | None,
        typer.Option(
            "--filter", help="New filter, JSON object or @file ('{}' matches every event)."
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    event_type: Annotated[str | None, typer.Option("--event-type", help="New event type.")] = None,
) -> None:
    """Change a trigger's filter, name, description or event type."""
    changes: dict[str, Any] = {}
    if filter is not None:
        changes["filter"] = json_object(filter, "--filter")
    if name is not None:
        changes["name"] = name
    if description is not None:
        changes["description"] = description
    if event_type is not None:
        changes["event_type"] = event_type
    if not changes:
        raise typer.BadParameter(
            "nothing to change: give --filter, --name, --description or --event-type"
        )
    with client_for(ctx) as client:
        trigger = client.event_triggers.update(
            trigger_id,
            filter=changes.get("filter", NOT_GIVEN),
            name=changes.get("name", NOT_GIVEN),
            description=changes.get("description", NOT_GIVEN),
            event_type=changes.get("event_type", NOT_GIVEN),
        )
    console = render.out()
    console.print(Text(f"Updated trigger {trigger.id}", style="green"))
    for warning in trigger.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"))


@triggers_app.command("enable")
def triggers_enable(ctx: typer.Context, trigger_id: Annotated[str, typer.Argument()]) -> None:
    """Switch a trigger on."""
    with client_for(ctx) as client:
        trigger = client.event_triggers.enable(trigger_id)
    render.out().print(Text(f"Enabled trigger {trigger.id}", style="green"))


@triggers_app.command("disable")
def triggers_disable(ctx: typer.Context, trigger_id: Annotated[str, typer.Argument()]) -> None:
    """Switch a trigger off (it keeps its filter and statistics)."""
    with client_for(ctx) as client:
        trigger = client.event_triggers.disable(trigger_id)
    render.out().print(Text(f"Disabled trigger {trigger.id}", style="yellow"))


@triggers_app.command("delete")
def triggers_delete(ctx: typer.Context, trigger_id: Annotated[str, typer.Argument()]) -> None:
    """Delete a trigger."""
    with client_for(ctx) as client:
        client.event_triggers.delete(trigger_id)
    render.out().print(f"Deleted trigger {trigger_id}", markup=False)


@triggers_app.command("test")
def triggers_test(
    ctx: typer.Context,
    trigger_id: Annotated[str, typer.Argument()],
    event: Annotated[
        str,
        typer.Option(
            "--event",
            help="An envelope or {data: ...} (bare data works too): inline JSON or @file.",
        ),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Explain whether an event would fire the trigger (fires nothing)."""
    body = json_object(event, "--event")
    with client_for(ctx) as client:
        result = client.event_triggers.test(trigger_id, body)
    if as_json:
        render.print_json(result)
    else:
        render.out().print(render.verdict_tree(result))


@triggers_app.command("backtest")
def triggers_backtest(
    ctx: typer.Context,
    trigger_id: Annotated[
        str | None, typer.Argument(help="A trigger (else give --event-type and --filter).")
    ] = None,
    event_type: Annotated[
        str | None, typer.Option("--event-type", help="e.g. model.added.")
    ] = None,
    filter: Annotated[
        str | None, typer.Option("--filter", help="JSON object (or @file) to try.")
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", "-n", min=1, max=10000, help="Scan this many newest events (default 1000)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Try a trigger's filter (or a new one) on stored events; fires nothing."""
    if trigger_id is None and event_type is None:
        raise typer.BadParameter("give a trigger ID, or --event-type (and --filter)")
    if trigger_id is not None and (event_type is not None or filter is not None):
        raise typer.BadParameter("give a trigger ID, or --event-type and --filter, not both")
    flt = json_object(filter, "--filter") if filter is not None else None
    with client_for(ctx) as client:
        result = client.event_triggers.backtest(
            trigger_id, event_type=event_type, filter=flt, limit=limit
        )
    if as_json:
        render.print_json(result)
    else:
        _print_backtest(result)


def _print_backtest(result: BacktestResult) -> None:
    console = render.out()
    share = f" ({100 * result.matched / result.scanned:.0f}%)" if result.scanned else ""
    console.print(
        Text(f"{result.matched} of {result.scanned} ", style="bold")
        + Text(f"stored {result.event_type} events matched{share}")
    )
    if result.examples:
        console.print()
        console.print(Text("matched, for example", style="bold"))
        table = _grid("event", "timestamp", "data", wide=("data",))
        for ex in result.examples:
            table.add_row(
                render.text(ex.get("event_id")),
                render.when(ex.get("timestamp")),
                render.text(render.fmt_value(ex.get("data"))),
            )
        console.print(table)
    if result.near_misses:
        console.print()
        console.print(Text("near misses (one clause failed)", style="bold"))
        table = _grid("event", "why", wide=("why",))
        for miss in result.near_misses:
            table.add_row(render.text(miss.get("event_id")), render.text(miss.get("summary")))
        console.print(table)


@triggers_app.command("stats")
def triggers_stats(
    ctx: typer.Context, trigger_id: Annotated[str, typer.Argument()], as_json: JsonFlag = False
) -> None:
    """Fire count, decisions by outcome, suppressions by reason and the recent fire rate."""
    with client_for(ctx) as client:
        stats = client.event_triggers.stats(trigger_id)
    if as_json:
        render.print_json(stats)
        return
    console = render.out()
    table = _grid("", "")
    table.show_header = False
    table.add_row(Text("trigger", style="bold"), render.text(stats.trigger_id))
    table.add_row(Text("fired", style="bold"), Text(str(stats.fire_count)))
    table.add_row(Text("last fired", style="bold"), render.when(stats.last_fired_at))
    table.add_row(
        Text("rate", style="bold"),
        Text(
            f"{stats.rate.get('last_minute', 0)} in the last minute, "
            f"{stats.rate.get('last_hour', 0)} in the last hour"
        ),
    )
    console.print(table)
    for title, counts in (("decisions", stats.decisions), ("suppressed", stats.suppressed)):
        console.print()
        if not counts:
            console.print(Text(f"{title}: none", style="dim"))
            continue
        rows = _grid("outcome" if title == "decisions" else "reason", "count")
        for key, count in sorted(counts.items(), key=lambda kv: -kv[1]):
            rows.add_row(render.status(key) if title == "decisions" else Text(key), str(count))
        console.print(Text(title, style="bold"))
        console.print(rows)


# ---------------------------------------------------------------------------------------------
# Events


@events_app.command("publish")
def events_publish(
    ctx: typer.Context,
    event_type: Annotated[str, typer.Argument(help="e.g. model.added.")],
    data: Annotated[str | None, typer.Option(help="The data: a JSON object (or @file).")] = None,
    data_file: Annotated[
        str | None, typer.Option("--data-file", help="The data from a JSON/YAML file.")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Who produced it.")] = None,
    event_id: Annotated[str | None, typer.Option("--id", help="The event id (dedup key).")] = None,
    test: Annotated[
        bool, typer.Option("--test", help="A test event: recorded and explained, fires nothing.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Publish an event."""
    if data is not None and data_file is not None:
        raise typer.BadParameter("give --data or --data-file, not both")
    payload: dict[str, Any] = {}
    if data is not None:
        payload = json_object(data, "--data")
    elif data_file is not None:
        payload = json_object(f"@{data_file}", "--data-file")
    with client_for(ctx) as client:
        accepted = client.events.publish(
            event_type, payload, source=source, event_id=event_id, test=test
        )
    if as_json:
        render.print_json(accepted)
        return
    console = render.out()
    if accepted.duplicate:
        console.print(
            Text(
                f"Duplicate: event {accepted.event_id} was already accepted; nothing fired again",
                style="yellow",
            )
        )
    else:
        line = Text(f"Published {accepted.event_id} ", style="green")
        line.append(f"({accepted.event_type})", style="")
        if accepted.fired_count is not None:
            of = f" of {accepted.candidate_count}" if accepted.candidate_count is not None else ""
            line.append(f": fired {accepted.fired_count}{of} candidate trigger(s)", style="")
        console.print(line)
    console.print(Text(f"Details: bud events show {accepted.event_id}", style="dim"))


@events_app.command("list")
def events_list(
    ctx: typer.Context,
    event_type: Annotated[str | None, typer.Option("--type", help="Only this event type.")] = None,
    source: Annotated[str | None, typer.Option(help="Only from this source.")] = None,
    since: Annotated[str | None, typer.Option(help="Only since this ISO 8601 time.")] = None,
    as_json: JsonFlag = False,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=0, help="Show at most this many (0: all).")
    ] = 50,
) -> None:
    """List events."""
    with client_for(ctx) as client:
        events = _take(client.events.list(event_type=event_type, source=source, since=since), limit)
    if as_json:
        render.print_json(events)
    else:
        render.out().print(render.events_table(events))


@events_app.command("show")
def events_show(
    ctx: typer.Context, event_id: Annotated[str, typer.Argument()], as_json: JsonFlag = False
) -> None:
    """Show an event: its data, every trigger's decision and the executions it started."""
    with client_for(ctx) as client:
        event = client.events.get(event_id)
        executions = [client.executions.get(x) for x in event.executions or []]
    if as_json:
        render.print_json({**render.to_jsonable(event), "executions": executions})
        return
    console = render.out()
    console.print(render.event_detail(event))
    console.print()
    console.print(Text("data", style="bold"))
    console.print_json(json.dumps(event.data, ensure_ascii=False))
    console.print()
    decisions = event.decisions or []
    if decisions:
        console.print(Text("decisions", style="bold"))
        console.print(render.decisions_table(decisions))
    else:
        console.print(Text("No trigger listens for this event type.", style="dim"))
    console.print()
    if executions:
        console.print(Text("executions", style="bold"))
        console.print(render.executions_table(executions))
    else:
        console.print(Text("No executions started.", style="dim"))


@events_app.command("replay")
def events_replay(
    ctx: typer.Context,
    event_ids: Annotated[
        list[str] | None, typer.Argument(help="Event ids (else select with --type).")
    ] = None,
    event_type: Annotated[
        str | None, typer.Option("--type", help="Replay stored events of this type.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="With --type: received at or after this ISO time.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="With --type: received before this ISO time.")
    ] = None,
    trigger: Annotated[
        str | None, typer.Option("--trigger", help="Only to this trigger (else to all of them).")
    ] = None,
    bypass_dedup: Annotated[
        bool,
        typer.Option("--bypass-dedup", help="Run again even where the trigger already fired."),
    ] = False,
    limit: Annotated[
        int | None,
        typer.Option("--limit", "-n", min=1, max=10000, help="With --type: at most this many."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Deliver stored events again to their triggers (or to one), oldest first."""
    if not event_ids and event_type is None:
        raise typer.BadParameter("give event IDS, or --type (with --since/--until)")
    with client_for(ctx) as client:
        result = client.events.replay(
            event_ids or None,
            event_type=event_type,
            since=since,
            until=until,
            trigger_id=trigger,
            bypass_dedup=bypass_dedup,
            limit=limit,
        )
    if as_json:
        render.print_json(result)
    else:
        _print_replay(result)


def _print_replay(result: ReplayResult) -> None:
    console = render.out()
    triggers = sorted({d.trigger_id for d in result.decisions})
    line = Text(f"Replayed {result.events} event(s): ", style="green")
    line.append(f"{result.fired} execution(s) started")
    if len(triggers) == 1:
        line.append(f" (trigger {triggers[0]})")
    console.print(line)
    if not result.decisions:
        console.print(Text("No trigger listens for these events.", style="dim"))
        return
    # One trigger goes in the heading, leaving the width to the reasons.
    columns = ["event", "outcome", "reason", "execution"]
    if len(triggers) > 1:
        columns.insert(1, "trigger")
    table = _grid(*columns, wide=("reason",))
    for d in result.decisions:
        outcome = render.status(d.outcome)
        if d.reason_code and d.reason_code != d.outcome:
            outcome.append(f" ({d.reason_code})", style="dim")
        reason = (d.reason or "").removeprefix("replay: ")
        cells = [render.text(d.event_id), outcome, render.text(reason), render.text(d.execution_id)]
        if len(triggers) > 1:
            cells.insert(1, render.text(d.trigger_id))
        table.add_row(*cells)
    console.print(table)


# ---------------------------------------------------------------------------------------------
# Executions


@executions_app.command("list")
def executions_list(
    ctx: typer.Context,
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="Pipeline id.")] = None,
    trigger: Annotated[str | None, typer.Option("--trigger", help="Trigger id.")] = None,
    event: Annotated[str | None, typer.Option("--event", help="Event id.")] = None,
    status: Annotated[
        str | None, typer.Option(help="queued, running, succeeded, failed or cancelled.")
    ] = None,
    as_json: JsonFlag = False,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=0, help="Show at most this many (0: all).")
    ] = 50,
) -> None:
    """List executions."""
    with client_for(ctx) as client:
        executions = _take(
            client.executions.list(
                pipeline_id=pipeline, trigger_id=trigger, event_id=event, status=status
            ),
            limit,
        )
    if as_json:
        render.print_json(executions)
    else:
        render.out().print(render.executions_table(executions))


@executions_app.command("show")
def executions_show(
    ctx: typer.Context, execution_id: Annotated[str, typer.Argument()], as_json: JsonFlag = False
) -> None:
    """Show an execution and its steps."""
    with client_for(ctx) as client:
        execution = client.executions.get(execution_id)
    if as_json:
        render.print_json(execution)
        return
    console = render.out()
    console.print(render.execution_view(execution))
    for step in execution.steps or []:
        if step.outputs:
            console.print(
                Text(f"{step.step_id} outputs: ", style="bold")
                + Text(render.fmt_value(step.outputs))
            )


@executions_app.command("cancel")
def executions_cancel(ctx: typer.Context, execution_id: Annotated[str, typer.Argument()]) -> None:
    """Cancel a queued or running execution."""
    with client_for(ctx) as client:
        execution = client.executions.cancel(execution_id)
    render.out().print(Text(f"Execution {execution.id}: ") + render.status(execution.status))


@executions_app.command("retry")
def executions_retry(ctx: typer.Context, execution_id: Annotated[str, typer.Argument()]) -> None:
    """Retry a failed or cancelled execution."""
    with client_for(ctx) as client:
        execution = client.executions.retry(execution_id)
    render.out().print(
        Text(f"Retrying execution {execution.id}: ") + render.status(execution.status)
    )
    render.out().print(Text(f"Follow it: bud executions watch {execution.id}", style="dim"))


@executions_app.command("watch")
def executions_watch(
    ctx: typer.Context,
    execution_id: Annotated[str, typer.Argument()],
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds.")] = None,
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds between polls.")] = 0.3,
) -> None:
    """Follow an execution's steps live until it ends; exit 0 if it succeeded, else 1."""
    with client_for(ctx) as client:
        _follow(client, execution_id, timeout=timeout, interval=interval)


def _follow(
    client: BudClient, execution_id: str, *, timeout: float | None = None, interval: float = 0.3
) -> None:
    """Show progress until the execution is final, then exit 0 if it succeeded, else 1."""
    console = render.out()
    deadline = None if timeout is None else time.monotonic() + timeout
    execution = client.executions.get(execution_id)

    def poll() -> Execution:
        if deadline is not None and time.monotonic() >= deadline:
            fail(f"execution {execution_id} is still {execution.status} after {timeout:g}s")
        time.sleep(interval)
        return client.executions.get(execution_id)

    if console.is_terminal:
        with Live(render.execution_view(execution), console=console, refresh_per_second=8) as live:
            while not execution.done:
                execution = poll()
                live.update(render.execution_view(execution))
    else:
        # Not a terminal (a log, a pipe): one line per change instead of a redrawn table.
        seen: dict[str, str] = {}
        while True:
            for step in execution.steps or []:
                if seen.get(step.step_id) != step.status:
                    seen[step.step_id] = step.status
                    console.print(Text(f"{step.step_id}: ") + render.status(step.status))
            if execution.done:
                break
            execution = poll()
        console.print()
        console.print(render.execution_view(execution))
    took = render.duration(execution.started_at, execution.finished_at)
    if execution.status == "succeeded":
        console.print(
            Text(
                f"✓ execution {execution.id} succeeded" + (f" in {took}" if took else ""),
                style="bold green",
            )
        )
        return
    message = f"✗ execution {execution.id} {execution.status}"
    if execution.error:
        message += f": {execution.error}"
    console.print(Text(message, style="bold red"))
    raise typer.Exit(1)


# ---------------------------------------------------------------------------------------------
# Actions


@actions_app.command("list")
def actions_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List the actions steps can run."""
    with client_for(ctx) as client:
        actions = client.actions.list().to_list()
    if as_json:
        render.print_json(actions)
    else:
        render.out().print(render.actions_table(actions))


@actions_app.command("show")
def actions_show(
    ctx: typer.Context, name: Annotated[str, typer.Argument()], as_json: JsonFlag = False
) -> None:
    """Show an action's params, outputs, timeout and retry policy."""
    with client_for(ctx) as client:
        action = client.actions.get(name)
    if as_json:
        render.print_json(action)
    else:
        render.out().print(render.action_detail(action))


# ---------------------------------------------------------------------------------------------
# Models


@models_app.command("add")
def models_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="e.g. Llama-3.2-1B.")],
    source: Annotated[str, typer.Option(help="e.g. hugging_face.")],
    uri: Annotated[str | None, typer.Option(help="Where the model lives.")] = None,
    meta: Annotated[
        list[str] | None,
        typer.Option(
            "--meta",
            "-m",
            help="Metadata key=value, value parsed as JSON when it can be "
            "(auto_deploy=true is a boolean); repeatable.",
        ),
    ] = None,
    created_by: Annotated[str | None, typer.Option("--created-by", help="Who added it.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a model: emits model.added, then shows the executions it started."""
    metadata = key_values(meta, "--meta")
    if created_by is not None:
        metadata["created_by"] = created_by
    with client_for(ctx) as client:
        model = client.models.add(name, source, uri=uri, **metadata)
        if as_json:
            render.print_json(model)
            return
        console = render.out()
        console.print(
            Text(f"Added model {model.id} ", style="green")
            + Text(f"({model.name}, {model.source})")
        )
        _show_started(client, model)


def _show_started(client: BudClient, model: Model, wait: float = 2.0) -> None:
    """Print the executions the model's model.added event started (waits up to ``wait`` s)."""
    console = render.out()
    try:
        event, executions = _started_by(client, model, wait)
    except BudError as exc:  # the model exists: a failed look-up must not look like a failure
        console.print(
            Text(f"(could not look up its model.added event: {exc.message})", style="dim")
        )
        return
    if event is None:
        console.print(
            Text(
                "Its model.added event is not recorded yet: see bud events list --type model.added",
                style="dim",
            )
        )
        return
    if not executions:
        console.print(
            Text(
                f"Event {event.event_id} (model.added) started no execution; "
                f"why: bud events show {event.event_id}",
                style="yellow",
            )
        )
        return
    console.print(
        Text(f"Event {event.event_id} (model.added) started {len(executions)} execution(s):")
    )
    names: dict[str, str] = {}
    for x in executions:
        if x.pipeline_id not in names:
            try:
                names[x.pipeline_id] = client.pipelines.get(x.pipeline_id).name
            except BudError:
                names[x.pipeline_id] = x.pipeline_id
        console.print(
            Text(f"  {x.id}  ")
            + Text(names[x.pipeline_id], style="bold")
            + Text("  ")
            + render.status(x.status)
        )
    console.print(Text(f"Watch it: bud executions watch {executions[0].id}", style="cyan"))


def _started_by(
    client: BudClient, model: Model, wait: float
) -> tuple[Event | None, list[Execution]]:
    """The model.added event for ``model`` and the executions it started, polling briefly."""
    deadline = time.monotonic() + wait
    since = _minus(model.created_at, seconds=60)
    found: Event | None = None
    while True:
        if found is None:
            for candidate in islice(client.events.list(event_type="model.added", since=since), 500):
                if candidate.data.get("model_id") == model.id:
                    found = candidate
                    break
        if found is not None:
            found = client.events.get(found.event_id)
            if found.executions:
                return found, [client.executions.get(x) for x in found.executions]
            decisions = found.decisions or []
            # Every candidate decided and none fired: nothing more will start.
            if found.candidate_count == 0 or (
                decisions and all(d.outcome != "fired" for d in decisions)
            ):
                return found, []
        if time.monotonic() >= deadline:
            return found, []
        time.sleep(0.2)


def _minus(stamp: str | None, seconds: float) -> str | None:
    if not stamp:
        return None
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = (moment - timedelta(seconds=seconds)).astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@models_app.command("list")
def models_list(ctx: typer.Context, as_json: JsonFlag = False, limit: LimitOpt = 0) -> None:
    """List models."""
    with client_for(ctx) as client:
        models = _take(client.models.list(), limit)
    if as_json:
        render.print_json(models)
    else:
        render.out().print(render.models_table(models))


@models_app.command("show")
def models_show(
    ctx: typer.Context, model_id: Annotated[str, typer.Argument()], as_json: JsonFlag = False
) -> None:
    """Show a model."""
    with client_for(ctx) as client:
        model = client.models.get(model_id)
    if as_json:
        render.print_json(model)
    else:
        render.out().print(render.models_table([model]))


@models_app.command("update")
def models_update(
    ctx: typer.Context,
    model_id: Annotated[str, typer.Argument()],
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            "-s",
            help="key=value to change (value parsed as JSON when it can be); repeatable.",
        ),
    ] = None,
) -> None:
    """Change a model: emits model.updated."""
    changes = key_values(set_, "--set")
    if not changes:
        raise typer.BadParameter("nothing to change: give --set key=value")
    with client_for(ctx) as client:
        model = client.models.update(model_id, **changes)
    render.out().print(Text(f"Updated model {model.id}", style="green"))


@models_app.command("delete")
def models_delete(ctx: typer.Context, model_id: Annotated[str, typer.Argument()]) -> None:
    """Delete a model."""
    with client_for(ctx) as client:
        client.models.delete(model_id)
    render.out().print(f"Deleted model {model_id}", markup=False)


# ---------------------------------------------------------------------------------------------
# Clusters


@clusters_app.command("create")
def clusters_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="e.g. Production.")],
    cluster_id: Annotated[str | None, typer.Option("--id", help="e.g. cluster_prod.")] = None,
    environment: Annotated[str | None, typer.Option(help="e.g. production.")] = None,
    status: Annotated[str, typer.Option(help="ready or unhealthy.")] = "ready",
    health_url: Annotated[
        str | None, typer.Option("--health-url", help="Probed for health.")
    ] = None,
) -> None:
    """Create a cluster."""
    with client_for(ctx) as client:
        cluster = client.clusters.create(
            name, id=cluster_id, environment=environment, status=status, health_url=health_url
        )
    render.out().print(
        Text(f"Created cluster {cluster.id} ", style="green")
        + Text(f"({cluster.name}, {cluster.status})")
    )


@clusters_app.command("list")
def clusters_list(ctx: typer.Context, as_json: JsonFlag = False, limit: LimitOpt = 0) -> None:
    """List clusters."""
    with client_for(ctx) as client:
        clusters = _take(client.clusters.list(), limit)
    if as_json:
        render.print_json(clusters)
    else:
        render.out().print(render.clusters_table(clusters))


@clusters_app.command("show")
def clusters_show(
    ctx: typer.Context, cluster_id: Annotated[str, typer.Argument()], as_json: JsonFlag = False
) -> None:
    """Show a cluster."""
    with client_for(ctx) as client:
        cluster = client.clusters.get(cluster_id)
    if as_json:
        render.print_json(cluster)
    else:
        render.out().print(render.clusters_table([cluster]))


@clusters_app.command("update")
def clusters_update(
    ctx: typer.Context,
    cluster_id: Annotated[str, typer.Argument()],
    status: Annotated[
        str | None, typer.Option(help="ready or unhealthy (emits cluster.*).")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why the status changed.")] = None,
    name: Annotated[str | None, typer.Option()] = None,
    environment: Annotated[str | None, typer.Option()] = None,
    health_url: Annotated[str | None, typer.Option("--health-url")] = None,
) -> None:
    """Change a cluster (a status change to ready/unhealthy emits cluster.ready/unhealthy)."""
    if all(v is None for v in (status, reason, name, environment, health_url)):
        raise typer.BadParameter(
            "nothing to change: give --status, --reason, --name, --environment or --health-url"
        )
    with client_for(ctx) as client:
        cluster = client.clusters.update(
            cluster_id,
            status=status,
            reason=reason,
            name=name,
            environment=environment,
            health_url=health_url,
        )
    render.out().print(Text(f"Updated cluster {cluster.id}: ") + render.status(cluster.status))


@clusters_app.command("delete")
def clusters_delete(ctx: typer.Context, cluster_id: Annotated[str, typer.Argument()]) -> None:
    """Delete a cluster."""
    with client_for(ctx) as client:
        client.clusters.delete(cluster_id)
    render.out().print(f"Deleted cluster {cluster_id}", markup=False)


# ---------------------------------------------------------------------------------------------
# Deployments


@deployments_app.command("create")
def deployments_create(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", help="Model id.")],
    cluster: Annotated[str, typer.Option("--cluster", help="Cluster id.")],
    name: Annotated[str, typer.Option("--name", help="Deployment name.")],
) -> None:
    """Deploy a model on a cluster (emits deployment.created or deployment.failed)."""
    with client_for(ctx) as client:
        deployment = client.deployments.create(model, cluster, name)
    line = Text(f"Deployment {deployment.id}: ") + render.status(deployment.status)
    if deployment.error_message:
        line.append(f" ({deployment.error_message})", style="red")
    render.out().print(line)


@deployments_app.command("list")
def deployments_list(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option("--model", help="Model id.")] = None,
    cluster: Annotated[str | None, typer.Option("--cluster", help="Cluster id.")] = None,
    status: Annotated[str | None, typer.Option()] = None,
    as_json: JsonFlag = False,
    limit: LimitOpt = 0,
) -> None:
    """List deployments."""
    with client_for(ctx) as client:
        deployments = _take(
            client.deployments.list(model_id=model, cluster_id=cluster, status=status), limit
        )
    if as_json:
        render.print_json(deployments)
    else:
        render.out().print(render.deployments_table(deployments))


@deployments_app.command("show")
def deployments_show(
    ctx: typer.Context, deployment_id: Annotated[str, typer.Argument()], as_json: JsonFlag = False
) -> None:
    """Show a deployment."""
    with client_for(ctx) as client:
        deployment = client.deployments.get(deployment_id)
    if as_json:
        render.print_json(deployment)
    else:
        render.out().print(render.deployments_table([deployment]))


@deployments_app.command("update")
def deployments_update(
    ctx: typer.Context,
    deployment_id: Annotated[str, typer.Argument()],
    status: Annotated[
        str | None, typer.Option(help="e.g. failed (emits deployment.failed).")
    ] = None,
    error_message: Annotated[str | None, typer.Option("--error-message")] = None,
) -> None:
    """Change a deployment's status."""
    if status is None and error_message is None:
        raise typer.BadParameter("nothing to change: give --status or --error-message")
    with client_for(ctx) as client:
        deployment = client.deployments.update(
            deployment_id, status=status, error_message=error_message
        )
    render.out().print(
        Text(f"Updated deployment {deployment.id}: ") + render.status(deployment.status)
    )


@deployments_app.command("delete")
def deployments_delete(ctx: typer.Context, deployment_id: Annotated[str, typer.Argument()]) -> None:
    """Delete a deployment."""
    with client_for(ctx) as client:
        client.deployments.delete(deployment_id)
    render.out().print(f"Deleted deployment {deployment_id}", markup=False)


# ---------------------------------------------------------------------------------------------
# Event types, channels, secrets, deliveries


@event_types_app.command("list")
def event_types_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List event types."""
    with client_for(ctx) as client:
        types = client.event_types.list().to_list()
    if as_json:
        render.print_json(types)
    else:
        render.out().print(render.event_types_table(types))


@event_types_app.command("show")
def event_types_show(
    ctx: typer.Context, name: Annotated[str, typer.Argument()], as_json: JsonFlag = False
) -> None:
    """Show an event type with its data schema and example."""
    with client_for(ctx) as client:
        event_type = client.event_types.get(name)
    if as_json:
        render.print_json(event_type)
        return
    console = render.out()
    console.print(render.event_types_table([event_type]))
    if event_type.schema_:
        console.print(Text("schema", style="bold"))
        console.print_json(json.dumps(event_type.schema_))
    if event_type.example:
        console.print(Text("example", style="bold"))
        console.print_json(json.dumps(event_type.example))


@event_types_app.command("register")
def event_types_register(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="e.g. team.thing_happened.")],
    description: Annotated[str, typer.Option()] = "",
    schema: Annotated[
        str | None, typer.Option(help="JSON Schema for the data: inline JSON or @file.")
    ] = None,
    example: Annotated[str | None, typer.Option(help="Example data: inline JSON or @file.")] = None,
) -> None:
    """Register a custom event type."""
    schema_body = json_object(schema, "--schema") if schema is not None else None
    example_body = json_object(example, "--example") if example is not None else None
    with client_for(ctx) as client:
        event_type = client.event_types.register(
            name, description=description, schema=schema_body, example=example_body
        )
    render.out().print(Text(f"Registered event type {event_type.name}", style="green"))


@channels_app.command("list")
def channels_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List notification channels (secrets in URLs masked)."""
    with client_for(ctx) as client:
        channels = client.channels.list().to_list()
    if as_json:
        render.print_json(channels)
    else:
        render.out().print(render.channels_table(channels))


@channels_app.command("set")
def channels_set(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="slack, webhook or email.")],
    url: Annotated[str | None, typer.Option(help="Webhook URL (slack, webhook).")] = None,
    smtp_url: Annotated[str | None, typer.Option("--smtp-url", help="smtp://... (email).")] = None,
    sender: Annotated[str | None, typer.Option("--from", help="Sender address (email).")] = None,
) -> None:
    """Configure a notification channel."""
    config: dict[str, Any] = {}
    if url is not None:
        config["url"] = url
    if smtp_url is not None:
        config["smtp_url"] = smtp_url
    if sender is not None:
        config["from"] = sender
    if not config:
        raise typer.BadParameter("give --url (slack, webhook) or --smtp-url and --from (email)")
    with client_for(ctx) as client:
        channel = client.channels.set(name, **config)
    render.out().print(
        Text(f"Channel {channel.name} set ", style="green") + Text(render.fmt_value(channel.config))
    )


@channels_app.command("delete")
def channels_delete(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Remove a channel configured through the API."""
    with client_for(ctx) as client:
        client.channels.delete(name)
    render.out().print(f"Deleted channel {name}", markup=False)


@secrets_app.command("list")
def secrets_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List secret names (values are never shown)."""
    with client_for(ctx) as client:
        secrets = client.secrets.list().to_list()
    if as_json:
        render.print_json(secrets)
    else:
        render.out().print(render.secrets_table(secrets))


@secrets_app.command("set")
def secrets_set(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
    value: Annotated[
        str | None,
        typer.Argument(
            help="The value; prompted for (hidden) when left out, so it stays out of shell history."
        ),
    ] = None,
) -> None:
    """Create or replace a secret."""
    if value is None:
        value = str(typer.prompt(f"Value for {name}", hide_input=True))
    with client_for(ctx) as client:
        secret = client.secrets.set(name, value)
    render.out().print(Text(f"Secret {secret.name} set", style="green"))


@secrets_app.command("delete")
def secrets_delete(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Delete a secret."""
    with client_for(ctx) as client:
        client.secrets.delete(name)
    render.out().print(f"Deleted secret {name}", markup=False)


@deliveries_app.command("list")
def deliveries_list(
    ctx: typer.Context,
    execution: Annotated[str | None, typer.Option("--execution", help="Execution id.")] = None,
    channel: Annotated[str | None, typer.Option()] = None,
    as_json: JsonFlag = False,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=0, help="Show at most this many (0: all).")
    ] = 50,
) -> None:
    """List notification deliveries."""
    with client_for(ctx) as client:
        deliveries = _take(client.deliveries.list(execution_id=execution, channel=channel), limit)
    if as_json:
        render.print_json(deliveries)
    else:
        render.out().print(render.deliveries_table(deliveries))
