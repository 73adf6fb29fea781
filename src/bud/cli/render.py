"""How the CLI shows things: rich tables, trees and JSON."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from bud.schemas import (
    Action,
    Channel,
    Cluster,
    Decision,
    Delivery,
    Deployment,
    DeploymentRevision,
    Event,
    EventTrigger,
    EventType,
    Execution,
    Model,
    Monitor,
    Pipeline,
    Secret,
    Step,
    TriggerTest,
)

STATUS_STYLES = {
    "queued": "cyan",
    "pending": "dim",
    "running": "yellow",
    "waiting": "magenta",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "dim",
    "skipped": "dim",
    "ready": "green",
    "unhealthy": "red",
    "fired": "green",
    "would_fire": "green",
    "filtered": "yellow",
    "disabled": "dim",
    "suppressed": "magenta",
    "error": "red",
    "sent": "green",
    "delivered": "green",
}
STATUS_MARKS = {
    "succeeded": "✓",
    "failed": "✗",
    "cancelled": "⊘",
    "skipped": "↷",
    "running": "…",
    "waiting": "⏸",
    "fired": "✓",
    "would_fire": "✓",
}


def _console(stderr: bool) -> Console:
    # Built per call so CliRunner's swapped streams and COLUMNS are honoured. Output that is
    # not a terminal gets a wide page, so ids in tables are never cut when piped or captured.
    stream = sys.stderr if stderr else sys.stdout
    width = None
    if not stream.isatty() and not os.environ.get("COLUMNS"):
        width = 160
    return Console(file=stream, highlight=False, width=width, stderr=stderr)


def out() -> Console:
    """A console on stdout."""
    return _console(False)


def err() -> Console:
    """A console on stderr."""
    return _console(True)


def to_jsonable(obj: Any) -> Any:
    """Models as their API JSON (aliases, e.g. ``schema``), lists and dicts recursively."""
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json", by_alias=True)
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    return obj


def print_json(obj: Any) -> None:
    """JSON on stdout, plain (no markup, no colour) so it can be piped into jq."""
    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False) + "\n")


def fmt_value(value: Any) -> str:
    """A value as compact JSON (strings quoted), for expected/actual values."""
    return json.dumps(value, ensure_ascii=False, default=str)


def status(value: str | None) -> Text:
    """A status word, coloured, with a mark where one helps."""
    if not value:
        return Text("-", style="dim")
    mark = STATUS_MARKS.get(value)
    label = f"{mark} {value}" if mark else value
    return Text(label, style=STATUS_STYLES.get(value, ""))


def text(value: Any) -> Text:
    """User data as literal text: never interpreted as rich markup."""
    if value is None or value == "":
        return Text("-", style="dim")
    return Text(str(value))


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def when(value: str | None) -> Text:
    """A timestamp, shortened to seconds."""
    moment = _parse_time(value)
    if moment is None:
        return text(value)
    return Text(moment.strftime("%Y-%m-%d %H:%M:%S"))


def duration(started: str | None, finished: str | None) -> str:
    """How long something ran: ``0.12s``, ``3.4s``, ``2m 05s``; empty if it did not start."""
    start = _parse_time(started)
    if start is None:
        return ""
    end = _parse_time(finished)
    if end is None:
        end = datetime.now(start.tzinfo)
    seconds = max((end - start).total_seconds(), 0.0)
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m {rest:02d}s"


# Short values (ids, statuses, times) never wrap; free text (errors, filters) takes the rest.
_FLEXIBLE = {
    "description",
    "error",
    "filter",
    "reason",
    "params",
    "metadata",
    "config",
    "data fields",
    "uri",
    "health url",
    "target",
    "depends on",
    "name",
}


# Ids are folded rather than cut when the terminal is narrow: a cut id is useless.
_IDS = {"id", "trigger", "pipeline", "event", "execution", "model", "cluster"}


def _table(*columns: str) -> Table:
    return grid(*columns, wide=tuple(_FLEXIBLE), cut=tuple(c for c in columns if c not in _IDS))


def grid(*columns: str, wide: tuple[str, ...] = (), cut: tuple[str, ...] = ()) -> Table:
    """A table whose ``wide`` columns fold long values and the rest stay on one line.

    Of those, ``cut`` ones end in an ellipsis when too long; the others fold rather than lose
    their end (an id cut short is useless).
    """
    table = Table(show_edge=False, header_style="bold", pad_edge=False)
    for name in columns:
        if name in wide:
            table.add_column(name, overflow="fold", min_width=12)
        else:
            table.add_column(name, no_wrap=True, overflow="ellipsis" if name in cut else "fold")
    return table


def pipelines_table(pipelines: Iterable[Pipeline]) -> Table:
    table = _table("id", "name", "version", "steps", "triggers", "last run", "updated")
    for p in pipelines:
        steps = p.definition.get("steps") if isinstance(p.definition, dict) else None
        last = (p.last_execution or {}).get("status")
        table.add_row(
            text(p.id),
            text(p.name),
            str(p.version),
            str(len(steps) if isinstance(steps, list) else "-"),
            text(p.trigger_count),
            status(last),
            when(p.updated_at),
        )
    return table


def definition_table(definition: dict[str, Any]) -> Table:
    table = _table("step", "action", "depends on", "params")
    for step in definition.get("steps") or []:
        if not isinstance(step, dict):
            continue
        table.add_row(
            text(step.get("id")),
            text(step.get("action")),
            text(", ".join(step.get("depends_on") or [])),
            text(fmt_value(step.get("params") or {})),
        )
    return table


def _narrow() -> bool:
    # Ids are ~30 characters: below this width the secondary columns would squeeze them out.
    return out().width < 140


def schedule_text(schedule: dict[str, Any] | None) -> str:
    """``cron 0 9 * * 1-5 (Europe/Berlin)`` or ``every 300s``."""
    if not schedule:
        return ""
    if "interval_seconds" in schedule:
        return f"every {schedule['interval_seconds']:g}s"
    return f"cron {schedule.get('cron')} ({schedule.get('timezone', 'UTC')})"


def triggers_table(triggers: Iterable[EventTrigger]) -> Table:
    narrow = _narrow()
    columns = ["id", "name", "pipeline", "event type", "filter", "enabled", "fired"]
    if narrow:
        columns.remove("pipeline")
    table = _table(*columns)
    for t in triggers:
        row: list[Any] = [
            text(t.id),
            text(t.name),
            text(t.pipeline_id),
            text(t.event_type if not t.schedule else schedule_text(t.schedule)),
            text(
                f"next {t.next_run_at}"
                if t.schedule
                else (fmt_value(t.filter) if t.filter else "(every event)")
            ),
            Text("yes", style="green") if t.enabled else Text("no", style="dim"),
            str(t.fire_count),
        ]
        if narrow:
            del row[2]
        table.add_row(*row)
    return table


def trigger_detail(t: EventTrigger) -> Table:
    rows: list[tuple[str, Any]] = [
        ("id", t.id),
        ("name", t.name),
        ("description", t.description),
        ("pipeline", t.pipeline_id),
        ("event type", t.event_type),
    ]
    if t.schedule:
        rows += [
            ("schedule", schedule_text(t.schedule)),
            ("next run", t.next_run_at or "(disabled)"),
            ("last tick", t.last_tick_at),
            ("skipped ticks", t.skipped_ticks),
        ]
    else:
        rows.append(("filter", fmt_value(t.filter) if t.filter else "(every event)"))
    rows += [
        ("enabled", "yes" if t.enabled else "no"),
        ("flow", fmt_value(t.flow) if t.flow else None),
        ("fired", t.fire_count),
        ("last fired", t.last_fired_at),
        ("created", t.created_at),
        ("updated", t.updated_at),
    ]
    return _fields(rows)


def _fields(rows: Sequence[tuple[str, Any]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in rows:
        table.add_row(label, value if isinstance(value, Text) else text(value))
    return table


def pipeline_detail(p: Pipeline) -> Table:
    return _fields(
        [
            ("id", p.id),
            ("name", p.name),
            ("description", p.description),
            ("version", p.version),
            ("triggers", p.trigger_count),
            ("last run", status((p.last_execution or {}).get("status"))),
            ("created", p.created_at),
            ("updated", p.updated_at),
        ]
    )


def events_table(events: Iterable[Event]) -> Table:
    table = _table("event", "type", "source", "timestamp", "fired", "test")
    for e in events:
        fired = "" if e.fired_count is None else str(e.fired_count)
        if e.candidate_count is not None:
            fired = f"{fired or 0}/{e.candidate_count}"
        table.add_row(
            text(e.event_id),
            text(e.event_type),
            text(e.source),
            when(e.timestamp),
            text(fired),
            "yes" if e.test else "",
        )
    return table


def event_detail(e: Event) -> Table:
    rows: list[tuple[str, Any]] = [
        ("event", e.event_id),
        ("type", e.event_type),
        ("source", e.source),
        ("timestamp", e.timestamp),
        ("received", e.received_at),
    ]
    if e.correlation_id:
        rows.append(("correlation", e.correlation_id))
    if e.causation_id:
        rows.append(("caused by", e.causation_id))
    if e.depth:
        rows.append(("depth", e.depth))
    if e.test:
        rows.append(("test", "yes (fires nothing)"))
    return _fields(rows)


def decisions_table(decisions: Iterable[Decision]) -> Table:
    table = _table("trigger", "pipeline", "outcome", "reason", "execution")
    for d in decisions:
        table.add_row(
            text(d.trigger_id),
            text(d.pipeline_id),
            status(d.outcome),
            text(d.reason),
            text(d.execution_id),
        )
    return table


def executions_table(executions: Iterable[Execution]) -> Table:
    narrow = _narrow()
    columns = ["id", "pipeline", "status", "event", "created", "duration", "error"]
    if narrow:
        columns = ["id", "status", "created", "duration", "error"]
    table = _table(*columns)
    for x in executions:
        error = x.error if not x.error or len(x.error) <= 80 else x.error[:79] + "…"
        if narrow:
            table.add_row(
                text(x.id),
                status(x.status),
                when(x.created_at),
                duration(x.started_at, x.finished_at),
                text(error),
            )
        else:
            table.add_row(
                text(x.id),
                text(x.pipeline_id),
                status(x.status),
                text(x.event_id or x.origin),
                when(x.created_at),
                duration(x.started_at, x.finished_at),
                text(error),
            )
    return table


def execution_detail(x: Execution) -> Table:
    return _fields(
        [
            ("execution", x.id),
            ("status", status(x.status)),
            ("pipeline", f"{x.pipeline_id} (version {x.pipeline_version})"),
            ("trigger", x.trigger_id),
            ("event", x.event_id or x.origin),
            ("params", fmt_value(x.params) if x.params else None),
            ("created", x.created_at),
            ("duration", duration(x.started_at, x.finished_at)),
            ("error", Text(x.error, style="red") if x.error else None),
        ]
    )


def steps_table(steps: Iterable[Step]) -> Table:
    table = _table("step", "action", "status", "attempts", "duration", "error")
    for s in steps:
        table.add_row(
            text(s.step_id),
            text(s.action),
            status(s.status),
            str(s.attempts),
            duration(s.started_at, s.finished_at),
            Text(s.error, style="red") if s.error else text(None),
        )
    return table


def execution_view(x: Execution) -> RenderableType:
    """An execution's header and its steps table (what ``executions show``/``watch`` print)."""
    parts: list[RenderableType] = [execution_detail(x)]
    if x.steps:
        parts += [Text(""), steps_table(x.steps)]
    return Group(*parts)


def verdict_tree(result: TriggerTest) -> Tree:
    """A trigger test as a tree: every clause with path, op, expected, actual and outcome."""
    verdict_line = Text()
    if result.would_fire:
        verdict_line.append("✓ would fire", style="bold green")
    else:
        verdict_line.append("✗ would not fire", style="bold red")
    verdict_line.append(f"  ({result.summary})")
    if not result.enabled:
        verdict_line.append("  trigger is disabled", style="yellow")
    tree = Tree(verdict_line)
    _verdict_node(tree, result.verdict)
    return tree


def _verdict_node(parent: Tree, node: dict[str, Any]) -> None:
    matched = bool(node.get("matched"))
    mark = Text("✓ ", style="green") if matched else Text("✗ ", style="red")
    if "children" in node:
        label = mark + Text(str(node.get("op") or "$and"), style="bold")
        if node.get("path"):
            label.append(f" at {node['path']}")
        branch = parent.add(label)
        children = node.get("children") or []
        if not children:
            branch.add(Text("(no clauses: every event matches)", style="dim"))
        for child in children:
            if isinstance(child, dict):
                _verdict_node(branch, child)
        return
    outcome = str(node.get("outcome") or ("matched" if matched else "failed"))
    label = mark + Text(str(node.get("path") or "?"), style="bold")
    label.append(f"  {node.get('op', '$eq')}  expected ")
    label.append(fmt_value(node.get("expected")), style="cyan")
    label.append("  actual ")
    if outcome == "path_missing":
        label.append("(missing)", style="dim")
    else:
        label.append(fmt_value(node.get("actual")), style="cyan")
    label.append("  " + outcome.replace("_", " "), style="green" if matched else "red")
    parent.add(label)


def models_table(models: Iterable[Model]) -> Table:
    table = _table("id", "name", "source", "uri", "metadata", "created by", "created")
    for m in models:
        table.add_row(
            text(m.id),
            text(m.name),
            text(m.source),
            text(m.uri),
            text(fmt_value(m.metadata) if m.metadata else None),
            text(m.created_by),
            when(m.created_at),
        )
    return table


def clusters_table(clusters: Iterable[Cluster]) -> Table:
    table = _table("id", "name", "environment", "status", "reason", "health url", "updated")
    for c in clusters:
        table.add_row(
            text(c.id),
            text(c.name),
            text(c.environment),
            status(c.status),
            text(c.reason),
            text(c.health_url),
            when(c.updated_at),
        )
    return table


def deployments_table(deployments: Iterable[Deployment]) -> Table:
    table = _table("id", "name", "model", "cluster", "status", "error", "created")
    for d in deployments:
        table.add_row(
            text(d.id),
            text(d.name),
            text(d.model_id),
            text(d.cluster_id),
            status(d.status),
            text(d.error_message),
            when(d.created_at),
        )
    return table


def revisions_table(revisions: Iterable[DeploymentRevision]) -> Table:
    table = _table("revision", "model version", "config", "status", "good", "reason", "created")
    for r in revisions:
        reason = r.reason if r.source_revision is None else f"{r.reason} to {r.source_revision}"
        table.add_row(
            text(r.revision),
            text(r.model_version),
            text(json.dumps(r.config) if r.config else ""),
            status(r.status),
            "yes" if r.good else "no",
            text(reason),
            when(r.created_at),
        )
    return table


def monitors_table(monitors: Iterable[Monitor]) -> Table:
    table = _table("id", "deployment", "cluster", "environment", "metrics", "alerts", "channel")
    for m in monitors:
        rules = [
            f"{a.get('metric')} {'>' if 'above' in a else '<'} {a.get('above', a.get('below'))}"
            for a in m.config.get("alerts") or []
        ]
        table.add_row(
            text(m.id),
            text(m.deployment_id),
            text(m.cluster_id),
            text(m.environment),
            text(", ".join(m.config.get("metrics") or [])),
            text("; ".join(rules)),
            text(m.config.get("channel")),
        )
    return table


def event_types_table(types: Iterable[EventType]) -> Table:
    table = _table("name", "description", "built in", "data fields")
    for t in types:
        props = t.schema_.get("properties") if isinstance(t.schema_, dict) else None
        fields = ", ".join(props) if isinstance(props, dict) else ""
        table.add_row(text(t.name), text(t.description), "yes" if t.builtin else "", text(fields))
    return table


def actions_table(actions: Iterable[Action]) -> Table:
    table = _table("name", "description", "timeout", "idempotent")
    for a in actions:
        table.add_row(
            text(a.name),
            text(a.description),
            f"{a.timeout_seconds:g}s",
            "yes" if a.idempotent else "no",
        )
    return table


def action_detail(a: Action) -> Group:
    props = a.params_schema.get("properties") if isinstance(a.params_schema, dict) else None
    required = set(a.params_schema.get("required") or []) if a.params_schema else set()
    params = _table("param", "type", "required", "description")
    for name, spec in (props or {}).items():
        spec = spec if isinstance(spec, dict) else {}
        kind = spec.get("type", "")
        params.add_row(
            text(name),
            text(fmt_value(kind) if isinstance(kind, list) else kind),
            "yes" if name in required else "",
            text(spec.get("description")),
        )
    outputs = _table("output", "description")
    for name, desc in a.outputs.items():
        outputs.add_row(text(name), text(desc))
    header = _fields(
        [
            ("action", a.name),
            ("description", a.description),
            ("timeout", f"{a.timeout_seconds:g}s"),
            ("retry", fmt_value(a.retry)),
            ("idempotent", "yes" if a.idempotent else "no"),
        ]
    )
    parts: list[RenderableType] = [header, Text(""), params]
    if a.outputs:
        parts += [Text(""), outputs]
    return Group(*parts)


def channels_table(channels: Iterable[Channel]) -> Table:
    table = _table("name", "config", "from")
    for c in channels:
        table.add_row(text(c.name), text(fmt_value(c.config)), text(c.source))
    return table


def secrets_table(secrets: Iterable[Secret]) -> Table:
    table = _table("name", "updated")
    for s in secrets:
        table.add_row(text(s.name), when(s.updated_at))
    return table


def deliveries_table(deliveries: Iterable[Delivery]) -> Table:
    table = _table("execution", "step", "channel", "target", "status", "code", "error", "created")
    for d in deliveries:
        table.add_row(
            text(d.execution_id),
            text(d.step_id),
            text(d.channel),
            text(d.target),
            status(d.status),
            text(d.status_code),
            text(d.error),
            when(d.created_at),
        )
    return table


def processes_table(health: dict[str, Any]) -> None:
    """``bud status``: the store, then one row per process sharing it."""
    console = out()
    console.print(f"store {health.get('store', '?')}, answered by {health.get('worker', '?')}")
    table = grid("id", "kind", "state", "host", "pid", "steps", "last seen", "started")
    for p in health.get("processes") or []:
        info = p.get("info") or {}
        steps = (
            f"{info.get('running', 0)}/{info.get('slots', 0)}" if info.get("runs_steps") else "-"
        )
        table.add_row(
            text(p.get("id")),
            text(p.get("kind")),
            Text(str(p.get("state")), style="green" if p.get("state") == "alive" else "red"),
            text(p.get("host")),
            text(p.get("pid")),
            steps,
            when(p.get("last_seen")),
            when(p.get("started_at")),
        )
    console.print(table)
