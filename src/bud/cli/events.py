"""``bud events`` (publish, inspect, replay) and ``bud event-types`` (the catalog)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.text import Text

from bud.cli import render
from bud.cli.common import (
    IdArg,
    JsonFlag,
    LimitOpt,
    client_for,
    fetch,
    group,
    optional_object,
    printed_json,
    say,
    show,
    take,
)
from bud.client import BudClient
from bud.schemas import Event, ReplayResult

events_app = group("events", "Publish events and see which triggers they fired.")
event_types_app = group("event-types", "The event type catalog.")


@events_app.command("publish")
def publish_event(
    ctx: typer.Context,
    event_type: Annotated[str, typer.Argument(help="e.g. model.added.")],
    data: Annotated[
        str | None, typer.Option(help="The data: a JSON object, inline or @file.")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Who produced it.")] = None,
    event_id: Annotated[str | None, typer.Option("--id", help="The event id (dedup key).")] = None,
    test: Annotated[
        bool, typer.Option("--test", help="A test event: recorded and explained, fires nothing.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Publish an event; prints its id and how many triggers it fired."""
    payload = optional_object(data, "--data") or {}
    with client_for(ctx) as client:
        accepted = client.events.publish(
            event_type, payload, source=source, event_id=event_id, test=test
        )
        if not accepted.duplicate:
            accepted = _with_decisions(client, accepted)
    show(accepted, as_json, _published_view)


def _with_decisions(client: BudClient, accepted: Event) -> Event:
    """The accepted event with what matching decided: fired count, decisions, executions."""
    stored = client.events.get(accepted.event_id)
    return accepted.model_copy(
        update={
            "fired_count": stored.fired_count,
            "candidate_count": stored.candidate_count,
            "decisions": stored.decisions,
            "executions": stored.executions,
            "received_at": stored.received_at,
        }
    )


def _published_view(accepted: Event) -> RenderableType:
    if accepted.duplicate:
        line = Text(
            f"Duplicate: event {accepted.event_id} was already accepted; nothing fired again",
            style="yellow",
        )
    else:
        line = Text(f"Published {accepted.event_id} ", style="green")
        line.append(f"({accepted.event_type})", style="")
        if accepted.test:
            line.append(": a test event, explained and fired nothing", style="")
        elif accepted.fired_count is not None:
            of = f" of {accepted.candidate_count}" if accepted.candidate_count is not None else ""
            line.append(f": fired {accepted.fired_count}{of} candidate trigger(s)", style="")
    return Group(line, Text(f"Details: bud events show {accepted.event_id}", style="dim"))


@events_app.command("list")
def list_events(
    ctx: typer.Context,
    event_type: Annotated[str | None, typer.Option("--type", help="Only this event type.")] = None,
    source: Annotated[str | None, typer.Option(help="Only from this source.")] = None,
    since: Annotated[str | None, typer.Option(help="Only since this ISO 8601 time.")] = None,
    as_json: JsonFlag = False,
    limit: LimitOpt = 50,
) -> None:
    """List events."""
    events = fetch(
        ctx,
        lambda client: take(
            client.events.list(event_type=event_type, source=source, since=since), limit
        ),
    )
    show(events, as_json, render.events_table)


@events_app.command("show")
def show_event(ctx: typer.Context, event_id: IdArg, as_json: JsonFlag = False) -> None:
    """Show an event: its data, every trigger's decision and the executions it started."""
    with client_for(ctx) as client:
        event = client.events.get(event_id)
        executions = [client.executions.get(x) for x in event.executions or []]
    if as_json:  # not ``show``: the data is printed as soft-wrapped JSON, not a renderable
        render.print_json({**render.to_jsonable(event), "executions": executions})
        return
    console = render.out()
    console.print(render.event_detail(event))
    console.print()
    console.print(Text("data", style="bold"))
    console.print_json(json.dumps(event.data, ensure_ascii=False))
    console.print()
    if event.decisions:
        console.print(Text("decisions", style="bold"))
        console.print(render.decisions_table(event.decisions))
    else:
        console.print(Text("No trigger listens for this event type.", style="dim"))
    console.print()
    if executions:
        console.print(Text("executions", style="bold"))
        console.print(render.executions_table(executions))
    else:
        console.print(Text("No executions started.", style="dim"))


@events_app.command("replay")
def replay_events(
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
    result = fetch(
        ctx,
        lambda client: client.events.replay(
            event_ids or None,
            event_type=event_type,
            since=since,
            until=until,
            trigger_id=trigger,
            bypass_dedup=bypass_dedup,
            limit=limit,
        ),
    )
    show(result, as_json, _replay_view)


def _replay_view(result: ReplayResult) -> RenderableType:
    triggers = sorted({d.trigger_id for d in result.decisions})
    line = Text(f"Replayed {result.events} event(s): ", style="green")
    line.append(f"{result.fired} execution(s) started")
    if len(triggers) == 1:
        line.append(f" (trigger {triggers[0]})")
    if not result.decisions:
        return Group(line, Text("No trigger listens for these events.", style="dim"))
    # One trigger goes in the heading, leaving the width to the reasons.
    many = len(triggers) > 1
    columns = ["event", "outcome", "reason", "execution"]
    if many:
        columns.insert(1, "trigger")
    table = render.grid(*columns, wide=("reason",))
    for d in result.decisions:
        outcome = render.status(d.outcome)
        if d.reason_code and d.reason_code != d.outcome:
            outcome.append(f" ({d.reason_code})", style="dim")
        reason = (d.reason or "").removeprefix("replay: ")
        cells = [render.text(d.event_id), outcome, render.text(reason), render.text(d.execution_id)]
        if many:
            cells.insert(1, render.text(d.trigger_id))
        table.add_row(*cells)
    return Group(line, table)


@event_types_app.command("list")
def list_event_types(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List event types."""
    types = fetch(ctx, lambda client: client.event_types.list().to_list())
    show(types, as_json, render.event_types_table)


@event_types_app.command("show")
def show_event_type(ctx: typer.Context, name: IdArg, as_json: JsonFlag = False) -> None:
    """Show an event type with its data schema and example."""
    event_type = fetch(ctx, lambda client: client.event_types.get(name))
    if as_json:  # not ``show``: schema and example are printed as soft-wrapped JSON
        render.print_json(event_type)
        return
    console = render.out()
    console.print(render.event_types_table([event_type]))
    for title, body in (("schema", event_type.schema_), ("example", event_type.example)):
        if body:
            console.print(Text(title, style="bold"))
            console.print_json(json.dumps(body))


@event_types_app.command("register")
def register_event_type(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="e.g. team.thing_happened.")],
    description: Annotated[str, typer.Option()] = "",
    schema: Annotated[
        str | None, typer.Option(help="JSON Schema for the data: inline JSON or @file.")
    ] = None,
    example: Annotated[str | None, typer.Option(help="Example data: inline JSON or @file.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a custom event type."""
    schema_body = optional_object(schema, "--schema")
    example_body = optional_object(example, "--example")
    event_type = fetch(
        ctx,
        lambda client: client.event_types.register(
            name, description=description, schema=schema_body, example=example_body
        ),
    )
    if not printed_json(as_json, event_type):
        say(f"Registered event type {event_type.name}", "green")
