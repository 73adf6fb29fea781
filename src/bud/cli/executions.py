"""``bud executions`` (inspect, watch, cancel, retry) and ``bud deliveries``."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.text import Text

from bud.cli import render
from bud.cli.common import (
    IdArg,
    JsonFlag,
    LimitOpt,
    PipelineOpt,
    client_for,
    fail,
    fetch,
    group,
    printed_json,
    say,
    show,
    take,
)
from bud.client import BudClient
from bud.schemas import Execution

executions_app = group("executions", "Inspect, watch, cancel and retry executions.")
deliveries_app = group("deliveries", "The record of notification deliveries.")


@executions_app.command("list")
def list_executions(
    ctx: typer.Context,
    pipeline: PipelineOpt = None,
    trigger: Annotated[str | None, typer.Option("--trigger", help="Trigger id.")] = None,
    event: Annotated[str | None, typer.Option("--event", help="Event id.")] = None,
    status: Annotated[
        str | None, typer.Option(help="queued, running, succeeded, failed or cancelled.")
    ] = None,
    as_json: JsonFlag = False,
    limit: LimitOpt = 50,
) -> None:
    """List executions."""
    executions = fetch(
        ctx,
        lambda client: take(
            client.executions.list(
                pipeline_id=pipeline, trigger_id=trigger, event_id=event, status=status
            ),
            limit,
        ),
    )
    show(executions, as_json, render.executions_table)


@executions_app.command("show")
def show_execution(ctx: typer.Context, execution_id: IdArg, as_json: JsonFlag = False) -> None:
    """Show an execution and its steps."""
    execution = fetch(ctx, lambda client: client.executions.get(execution_id))
    show(execution, as_json, _execution_with_outputs)


def _execution_with_outputs(execution: Execution) -> RenderableType:
    outputs = [
        Text(f"{step.step_id} outputs: ", style="bold") + Text(render.fmt_value(step.outputs))
        for step in execution.steps or []
        if step.outputs
    ]
    items = [
        Text(f"{step.step_id} items: ", style="bold")
        + Text(
            ", ".join(
                f"#{i.index} {i.status}" + (f" ({i.error})" if i.error else "") for i in step.items
            )
        )
        for step in execution.steps or []
        if step.items
    ]
    return Group(render.execution_view(execution), *outputs, *items)


@executions_app.command("cancel")
def cancel_execution(ctx: typer.Context, execution_id: IdArg, as_json: JsonFlag = False) -> None:
    """Cancel a queued or running execution."""
    execution = fetch(ctx, lambda client: client.executions.cancel(execution_id))
    if printed_json(as_json, execution):
        return
    say(Text(f"Execution {execution.id}: ") + render.status(execution.status))


@executions_app.command("retry")
def retry_execution(
    ctx: typer.Context,
    execution_id: IdArg,
    from_step: Annotated[
        str | None,
        typer.Option("--from-step", help="Run this step and every step after it again."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Retry a failed or cancelled execution (or re-run one from a step)."""
    execution = fetch(
        ctx, lambda client: client.executions.retry(execution_id, from_step=from_step)
    )
    if printed_json(as_json, execution):
        return
    say(Text(f"Retrying execution {execution.id}: ") + render.status(execution.status))
    say(f"Follow it: bud executions watch {execution.id}", "dim")


@executions_app.command("watch")
def watch_execution(
    ctx: typer.Context,
    execution_id: IdArg,
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds.")] = None,
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds between polls.")] = 0.3,
    as_json: JsonFlag = False,
) -> None:
    """Follow an execution's steps live until it ends; exit 0 if it succeeded, else 1.

    With --json nothing is shown while it runs; the finished execution is printed as JSON.
    """
    with client_for(ctx) as client:
        follow(client, execution_id, timeout=timeout, interval=interval, as_json=as_json)


def follow(
    client: BudClient,
    execution_id: str,
    *,
    timeout: float | None = None,
    interval: float = 0.3,
    as_json: bool = False,
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

    if as_json:
        while not execution.done:
            execution = poll()
        render.print_json(execution)
        if execution.status != "succeeded":
            raise typer.Exit(1)
        return
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
    _conclude(execution)


def _conclude(execution: Execution) -> None:
    """Say how the execution ended; exit 1 unless it succeeded."""
    if execution.status == "succeeded":
        took = render.duration(execution.started_at, execution.finished_at)
        say(
            f"✓ execution {execution.id} succeeded" + (f" in {took}" if took else ""),
            "bold green",
        )
        return
    message = f"✗ execution {execution.id} {execution.status}"
    if execution.error:
        message += f": {execution.error}"
    say(message, "bold red")
    raise typer.Exit(1)


@deliveries_app.command("list")
def list_deliveries(
    ctx: typer.Context,
    execution: Annotated[str | None, typer.Option("--execution", help="Execution id.")] = None,
    channel: Annotated[str | None, typer.Option()] = None,
    as_json: JsonFlag = False,
    limit: LimitOpt = 50,
) -> None:
    """List notification deliveries."""
    deliveries = fetch(
        ctx,
        lambda client: take(client.deliveries.list(execution_id=execution, channel=channel), limit),
    )
    show(deliveries, as_json, render.deliveries_table)
