"""``bud triggers``: which events start which pipeline, tested and backtested."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

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
    PipelineOpt,
    deleted,
    fetch,
    given,
    group,
    json_object,
    optional_object,
    printed_json,
    say,
    show,
    take,
    warn,
)
from bud.client import NOT_GIVEN
from bud.schemas import BacktestResult, TriggerStats

triggers_app = group("triggers", "Event triggers: which events start which pipeline.")

FLOW_HELP = (
    "Flow control, JSON object or @file: dedup, rate_limit, debounce, concurrency, "
    'circuit_breaker (docs/triggers.md), e.g. \'{"rate_limit": {"max": 10, "per_seconds": 60}}\'.'
)


CronOpt = Annotated[
    str | None,
    typer.Option(
        "--cron",
        help="A schedule trigger: five cron fields (minute hour day month weekday), "
        "e.g. '0 9 * * 1-5'.",
    ),
]
TimezoneOpt = Annotated[
    str | None,
    typer.Option("--timezone", help="The cron schedule's IANA time zone (default UTC)."),
]
IntervalOpt = Annotated[
    float | None,
    typer.Option("--interval", help="A schedule trigger firing every this many seconds."),
]


def _schedule(
    cron: str | None, timezone: str | None, interval: float | None
) -> dict[str, object] | None:
    """The schedule the options give, or None; the server checks the values."""
    if cron is None and interval is None:
        if timezone is not None:
            raise typer.BadParameter("--timezone goes with --cron")
        return None
    if cron is not None and interval is not None:
        raise typer.BadParameter("give --cron or --interval, not both")
    if interval is not None:
        if timezone is not None:
            raise typer.BadParameter("--timezone goes with --cron, not --interval")
        return {"interval_seconds": int(interval) if interval.is_integer() else interval}
    return {"cron": cron, "timezone": timezone or "UTC"}


@triggers_app.command("create")
def create_trigger(
    ctx: typer.Context,
    pipeline: Annotated[str, typer.Option("--pipeline", help="Pipeline id.")],
    event_type: Annotated[
        str | None,
        typer.Option("--event-type", help="e.g. model.added (not for --cron or --interval)."),
    ] = None,
    cron: CronOpt = None,
    timezone: TimezoneOpt = None,
    interval: IntervalOpt = None,
    filter: Annotated[
        str | None,
        typer.Option(
            "--filter", help='JSON object (or @file), e.g. \'{"model_source": "hugging_face"}\'.'
        ),
    ] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it switched off.")] = False,
    name: Annotated[str | None, typer.Option(help="A name.")] = None,
    description: Annotated[str | None, typer.Option(help="A description.")] = None,
    flow: Annotated[str | None, typer.Option("--flow", help=FLOW_HELP)] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an event trigger (--event-type), or a schedule trigger (--cron or --interval)."""
    schedule = _schedule(cron, timezone, interval)
    if schedule is None and event_type is None:
        raise typer.BadParameter("give --event-type, or --cron / --interval for a schedule")
    flt = optional_object(filter, "--filter")
    flow_body = optional_object(flow, "--flow")
    trigger = fetch(
        ctx,
        lambda client: client.event_triggers.create(
            pipeline_id=pipeline,
            event_type=event_type,
            filter=flt,
            enabled=not disabled,
            name=name,
            description=description,
            flow=flow_body,
            schedule=schedule,
        ),
    )
    if printed_json(as_json, trigger):
        return
    state = "enabled" if trigger.enabled else "disabled"
    what = render.schedule_text(trigger.schedule) if trigger.schedule else trigger.event_type
    say(
        Text(f"Created trigger {trigger.id} ", style="green")
        + Text(f"({what} → {trigger.pipeline_id}, {state})")
    )
    if trigger.next_run_at:
        say(f"Next run: {trigger.next_run_at}")
    warn(trigger.warnings)


@triggers_app.command("list")
def list_triggers(
    ctx: typer.Context,
    pipeline: PipelineOpt = None,
    event_type: Annotated[str | None, typer.Option("--event-type")] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enabled/--disabled", help="Only enabled / disabled ones.")
    ] = None,
    as_json: JsonFlag = False,
    limit: LimitOpt = 0,
) -> None:
    """List event triggers."""
    triggers = fetch(
        ctx,
        lambda client: take(
            client.event_triggers.list(
                pipeline_id=pipeline, event_type=event_type, enabled=enabled
            ),
            limit,
        ),
    )
    show(triggers, as_json, render.triggers_table)


@triggers_app.command("show")
def show_trigger(ctx: typer.Context, trigger_id: IdArg, as_json: JsonFlag = False) -> None:
    """Show a trigger."""
    trigger = fetch(ctx, lambda client: client.event_triggers.get(trigger_id))
    show(trigger, as_json, render.trigger_detail)


@triggers_app.command("update")
def update_trigger(
    ctx: typer.Context,
    trigger_id: IdArg,
    filter: Annotated[
        str | None,
        typer.Option(
            "--filter", help="New filter, JSON object or @file ('{}' matches every event)."
        ),
    ] = None,
    name: NameOpt = None,
    description: DescriptionOpt = None,
    event_type: Annotated[str | None, typer.Option("--event-type", help="New event type.")] = None,
    flow: Annotated[
        str | None, typer.Option("--flow", help=FLOW_HELP + " '{}' removes it.")
    ] = None,
    cron: CronOpt = None,
    timezone: TimezoneOpt = None,
    interval: IntervalOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a trigger's filter, name, description, event type, flow control or schedule."""
    changes = given(
        filter=optional_object(filter, "--filter"),
        name=name,
        description=description,
        event_type=event_type,
        flow=optional_object(flow, "--flow"),
        schedule=_schedule(cron, timezone, interval),
    )
    if not changes:
        raise typer.BadParameter(
            "nothing to change: give --filter, --name, --description, --event-type, --flow, "
            "--cron or --interval"
        )
    trigger = fetch(
        ctx,
        lambda client: client.event_triggers.update(
            trigger_id,
            filter=changes.get("filter", NOT_GIVEN),
            name=changes.get("name", NOT_GIVEN),
            description=changes.get("description", NOT_GIVEN),
            event_type=changes.get("event_type", NOT_GIVEN),
            flow=changes.get("flow", NOT_GIVEN),
            schedule=changes.get("schedule", NOT_GIVEN),
        ),
    )
    if printed_json(as_json, trigger):
        return
    say(f"Updated trigger {trigger.id}", "green")
    warn(trigger.warnings)


@triggers_app.command("enable")
def enable_trigger(ctx: typer.Context, trigger_id: IdArg, as_json: JsonFlag = False) -> None:
    """Switch a trigger on."""
    trigger = fetch(ctx, lambda client: client.event_triggers.enable(trigger_id))
    if not printed_json(as_json, trigger):
        say(f"Enabled trigger {trigger.id}", "green")


@triggers_app.command("disable")
def disable_trigger(ctx: typer.Context, trigger_id: IdArg, as_json: JsonFlag = False) -> None:
    """Switch a trigger off (it keeps its filter and statistics)."""
    trigger = fetch(ctx, lambda client: client.event_triggers.disable(trigger_id))
    if not printed_json(as_json, trigger):
        say(f"Disabled trigger {trigger.id}", "yellow")


@triggers_app.command("delete")
def delete_trigger(ctx: typer.Context, trigger_id: IdArg) -> None:
    """Delete a trigger."""
    fetch(ctx, lambda client: client.event_triggers.delete(trigger_id))
    deleted(f"trigger {trigger_id}")


@triggers_app.command("test")
def test_trigger(
    ctx: typer.Context,
    trigger_id: IdArg,
    event: Annotated[
        str,
        typer.Option(
            "--event",
            help="The event, inline JSON or @file: an envelope, {data: ...} or the bare data.",
        ),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Explain whether an event would fire the trigger (fires nothing)."""
    body = json_object(event, "--event")
    result = fetch(ctx, lambda client: client.event_triggers.test(trigger_id, body))
    show(result, as_json, render.verdict_tree)


@triggers_app.command("backtest")
def backtest_trigger(
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
    flt = optional_object(filter, "--filter")
    result = fetch(
        ctx,
        lambda client: client.event_triggers.backtest(
            trigger_id, event_type=event_type, filter=flt, limit=limit
        ),
    )
    show(result, as_json, _backtest_view)


def _backtest_view(result: BacktestResult) -> RenderableType:
    share = f" ({100 * result.matched / result.scanned:.0f}%)" if result.scanned else ""
    parts: list[RenderableType] = [
        Text(f"{result.matched} of {result.scanned} ", style="bold")
        + Text(f"stored {result.event_type} events matched{share}")
    ]
    if result.examples:
        table = render.grid("event", "timestamp", "data", wide=("data",))
        for ex in result.examples:
            table.add_row(
                render.text(ex.get("event_id")),
                render.when(ex.get("timestamp")),
                render.text(render.fmt_value(ex.get("data"))),
            )
        parts += _section("matched, for example", table)
    if result.near_misses:
        table = render.grid("event", "why", wide=("why",))
        for miss in result.near_misses:
            table.add_row(render.text(miss.get("event_id")), render.text(miss.get("summary")))
        parts += _section("near misses (one clause failed)", table)
    return Group(*parts)


def _section(title: str, body: RenderableType) -> list[RenderableType]:
    return [Text(""), Text(title, style="bold"), body]


@triggers_app.command("stats")
def trigger_stats(ctx: typer.Context, trigger_id: IdArg, as_json: JsonFlag = False) -> None:
    """Fire count, decisions by outcome, suppressions by reason and the recent fire rate."""
    stats = fetch(ctx, lambda client: client.event_triggers.stats(trigger_id))
    show(stats, as_json, _stats_view)


def _stats_view(stats: TriggerStats) -> RenderableType:
    table = render.grid("", "")
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
    parts: list[RenderableType] = [table]
    parts += _counts("decisions", "outcome", stats.decisions, render.status)
    parts += _counts("suppressed", "reason", stats.suppressed, Text)
    return Group(*parts)


def _counts(
    title: str, column: str, counts: dict[str, int], label: Callable[[str], Text]
) -> list[RenderableType]:
    """A count table under ``title``, most first, or a dim ``none``."""
    if not counts:
        return [Text(""), Text(f"{title}: none", style="dim")]
    rows = render.grid(column, "count")
    for key, count in sorted(counts.items(), key=lambda kv: -kv[1]):
        rows.add_row(label(key), str(count))
    return _section(title, rows)
