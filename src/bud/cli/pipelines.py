"""``bud pipelines``: create, inspect, validate, dry-run and run pipelines."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.text import Text

from bud.cli import render
from bud.cli.common import (
    DescriptionOpt,
    IdArg,
    JsonFlag,
    LimitOpt,
    NameOpt,
    ParamsOpt,
    client_for,
    deleted,
    fail,
    fetch,
    group,
    key_values,
    load_file,
    optional_object,
    printed_json,
    say,
    show,
    take,
    warn,
)
from bud.cli.executions import follow
from bud.schemas import DryRunResult, DryRunStep, EventTrigger, Pipeline

pipelines_app = group("pipelines", "Create, inspect, validate and run pipelines.")

# How the server begins the error of a step that reads earlier steps' outputs (docs/triggers.md).
RUNTIME_ONLY = "needs runtime output"


def _pipeline_file(
    file: str, name: str | None, description: str | None
) -> tuple[str | None, dict[str, Any], str | None]:
    """A pipeline file's name, definition and description (the options win over the file)."""
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


def _saved(verb: str, pipeline: Pipeline) -> None:
    say(
        Text(f"{verb} pipeline {pipeline.id} ", style="green")
        + Text(f"({pipeline.name}, version {pipeline.version})")
    )


@pipelines_app.command("create")
def create_pipeline(
    ctx: typer.Context,
    file: Annotated[
        str,
        typer.Argument(
            help="A YAML/JSON file: {name, description, definition} or a "
            "bare definition ({steps: [...]}); - for stdin."
        ),
    ],
    name: Annotated[str | None, typer.Option(help="Name (required for a bare definition).")] = None,
    description: Annotated[str | None, typer.Option(help="Description.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a pipeline from a file."""
    name, definition, description = _pipeline_file(file, name, description)
    if not name:
        raise typer.BadParameter("the pipeline needs a name: put one in the file or pass --name")
    pipeline = fetch(
        ctx,
        lambda client: client.pipelines.create(
            name=name, definition=definition, description=description
        ),
    )
    if printed_json(as_json, pipeline):
        return
    _saved("Created", pipeline)
    say(
        f"Add a trigger: bud triggers create --pipeline {pipeline.id} --event-type model.added",
        "dim",
    )


@pipelines_app.command("list")
def list_pipelines(ctx: typer.Context, as_json: JsonFlag = False, limit: LimitOpt = 0) -> None:
    """List pipelines."""
    pipelines = fetch(ctx, lambda client: take(client.pipelines.list(), limit))
    show(pipelines, as_json, render.pipelines_table)


@pipelines_app.command("show")
def show_pipeline(ctx: typer.Context, pipeline_id: IdArg, as_json: JsonFlag = False) -> None:
    """Show a pipeline: its steps and triggers."""
    with client_for(ctx) as client:
        pipeline = client.pipelines.get(pipeline_id)
        triggers = client.event_triggers.list(pipeline_id=pipeline_id).to_list()
    show(
        {**render.to_jsonable(pipeline), "triggers": triggers},
        as_json,
        lambda _: _pipeline_view(pipeline, triggers),
    )


def _pipeline_view(pipeline: Pipeline, triggers: list[EventTrigger]) -> RenderableType:
    return Group(
        render.pipeline_detail(pipeline),
        Text(""),
        render.definition_table(pipeline.definition),
        Text(""),
        render.triggers_table(triggers)
        if triggers
        else Text("No triggers: it runs only by hand (bud pipelines run).", style="dim"),
    )


@pipelines_app.command("update")
def update_pipeline(
    ctx: typer.Context,
    pipeline_id: IdArg,
    file: Annotated[str | None, typer.Argument(help="YAML/JSON as for create.")] = None,
    name: NameOpt = None,
    description: DescriptionOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Update a pipeline (a new definition makes a new version)."""
    definition: dict[str, Any] | None = None
    if file is not None:
        name, definition, description = _pipeline_file(file, name, description)
    if name is None and definition is None and description is None:
        raise typer.BadParameter("nothing to change: give a FILE, --name or --description")
    pipeline = fetch(
        ctx,
        lambda client: client.pipelines.update(
            pipeline_id, name=name, definition=definition, description=description
        ),
    )
    if printed_json(as_json, pipeline):
        return
    _saved("Updated", pipeline)
    warn(pipeline.warnings)


@pipelines_app.command("delete")
def delete_pipeline(ctx: typer.Context, pipeline_id: IdArg) -> None:
    """Delete a pipeline and its triggers."""
    fetch(ctx, lambda client: client.pipelines.delete(pipeline_id))
    deleted(f"pipeline {pipeline_id} and its triggers")


@pipelines_app.command("validate")
def validate_pipeline(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="YAML/JSON pipeline or bare definition.")],
    as_json: JsonFlag = False,
) -> None:
    """Check a definition without saving it (exit 1 when invalid)."""
    _, definition, _ = _pipeline_file(file, None, None)
    result = fetch(ctx, lambda client: client.pipelines.validate(definition))
    if printed_json(as_json, result):
        if not result.valid:
            raise typer.Exit(1)
        return
    if not result.valid:
        fail(f"{file}: the definition is invalid", problems=result.errors)
    say("✓ valid", "green")


EventOpt = Annotated[
    str | None,
    typer.Option("--event", help="The event: inline JSON or @file (an envelope or its data)."),
]


@pipelines_app.command("run")
def run_pipeline(
    ctx: typer.Context,
    pipeline_id: IdArg,
    param: ParamsOpt = None,
    event: EventOpt = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow it until it ends; exit 1 unless it succeeds.")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option(help="With --wait: give up after this many seconds.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Start an execution by hand (with --json --wait: the finished execution)."""
    params = key_values(param, "--param")
    event_body = optional_object(event, "--event")
    with client_for(ctx) as client:
        execution = client.pipelines.run(pipeline_id, params=params or None, event=event_body)
        if as_json and not wait:
            render.print_json(execution)
            return
        if not as_json:
            say(f"Started execution {execution.id}", "green")
        if wait:
            follow(client, execution.id, timeout=timeout, as_json=as_json)
        else:
            say(f"Follow it: bud executions watch {execution.id}", "dim")


@pipelines_app.command("dry-run")
def dry_run_pipeline(
    ctx: typer.Context,
    pipeline_id: IdArg,
    event: EventOpt = None,
    param: ParamsOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Show every step's rendered params (secrets masked) or its error; runs nothing.

    Exits 1 when a step cannot render (a step that reads other steps' outputs is not an error).
    """
    params = key_values(param, "--param")
    event_body = optional_object(event, "--event")
    result = fetch(
        ctx,
        lambda client: client.pipelines.dry_run(
            pipeline_id, event=event_body, params=params or None
        ),
    )
    show(result, as_json, _dry_run_view)
    broken = [step.step_id for step in result.steps if _render_error(step)]
    if broken and not as_json:
        fail(f"{len(broken)} step(s) cannot render: {', '.join(broken)}")
    if broken:
        raise typer.Exit(1)


def _render_error(step: DryRunStep) -> bool:
    """Whether the step failed to render (not merely waiting for earlier steps' outputs)."""
    return bool(step.error) and not _needs_runtime(step)


def _needs_runtime(step: DryRunStep) -> bool:
    return (step.error or "").startswith(RUNTIME_ONLY)


def _dry_run_view(result: DryRunResult) -> RenderableType:
    heading = Text(
        f"Dry run of {result.pipeline_id} (version {result.version}): ", style="bold"
    ) + Text("nothing was stored or run", style="dim")
    table = render.grid(
        "step", "action", "depends on", "runs", "params or error", wide=("params or error",)
    )
    for step in result.steps:
        runs = Text("skip", style="dim") if step.would_skip else Text("yes", style="green")
        if step.condition is not None:
            runs.append(f" (condition {render.fmt_value(step.condition)})", style="dim")
        if step.items is not None:
            runs.append(f"\n× {len(step.items)} items: {render.fmt_value(step.items)}")
        cell = Text()
        if step.params is not None:
            cell.append(render.fmt_value(step.params))
        if step.error:
            style = "yellow" if _needs_runtime(step) else "red"
            cell.append(("\n" if step.params is not None else "") + step.error, style=style)
        table.add_row(
            render.text(step.step_id),
            render.text(step.action),
            render.text(", ".join(step.depends_on)),
            runs,
            cell,
        )
    return Group(heading, table)
