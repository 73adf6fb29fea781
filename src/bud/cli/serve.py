"""``bud serve`` runs the server; ``bud demo`` loads the example setup into one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.text import Text

from bud.cli import render
from bud.cli.common import (
    JsonFlag,
    client_for,
    debugging,
    fail,
    printed_json,
    require_server_extra,
)
from bud.cli.startup import startup_failures

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")

NEXT_STEPS = (
    "bud models add Llama-3.2-1B --source hugging_face --meta auto_deploy=true",
    "bud executions watch <execution id printed above>",
    "bud deployments list",
    "bud deployments update <deployment id> --status failed --error-message 'OOM'",
    "bud events list",
)


def serve(
    ctx: typer.Context,
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
        int | None,
        typer.Option(
            min=1,
            show_default="16 on SQLite, 64 on PostgreSQL",
            help="Concurrent steps per process.",
        ),
    ] = None,
    nats_url: Annotated[
        str | None,
        typer.Option("--nats-url", help="Consume platform events from NATS JetStream."),
    ] = None,
    nats_subject: Annotated[
        str | None,
        typer.Option(
            "--nats-subject", show_default="platform.events.>", help="Subjects to consume."
        ),
    ] = None,
    nats_egress_subject: Annotated[
        str | None,
        typer.Option("--nats-egress-subject", help="Publish execution.<status> events here."),
    ] = None,
    no_workers: Annotated[
        bool,
        typer.Option("--no-workers", help="An API node: run no steps (bud worker runs them)."),
    ] = False,
    log_level: Annotated[
        str | None,
        typer.Option("--log-level", show_default="info", help="debug, info, warning or error."),
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format",
            show_default="text",
            help="text, or json: one JSON object per line (also BUD_LOG_FORMAT).",
        ),
    ] = None,
) -> None:
    """Run the server: REST API under /v1/, the web UI at /, /healthz and /metrics."""
    require_server_extra("serve")
    from bud.settings import Settings

    if log_level is not None and log_level.lower() not in LOG_LEVELS:
        raise typer.BadParameter(f"unknown log level {log_level!r}", param_hint="--log-level")
    if log_format is not None and log_format.lower() not in ("text", "json"):
        raise typer.BadParameter(
            f"unknown log format {log_format!r}: use text or json", param_hint="--log-format"
        )
    try:
        settings = Settings.load(
            config,
            host=host,
            port=port,
            data_dir=data_dir,
            database_url=database_url,
            demo=True if demo else None,
            workers=workers,
            run_workers=False if no_workers else None,
            nats_url=nats_url,
            nats_subject=nats_subject,
            nats_egress_subject=nats_egress_subject,
            log_level=log_level,
            log_format=log_format,
        )
    except (OSError, ValueError, yaml.YAMLError) as exc:
        fail(f"cannot load settings: {exc}")
    from bud import server

    with startup_failures(debugging(ctx)):
        try:
            server.run(settings, log_level=settings.log_level)
        except RuntimeError as exc:  # e.g. refusing a non-loopback host without API keys
            fail(str(exc))


def demo(
    ctx: typer.Context,
    url: Annotated[
        str | None, typer.Option("--url", help="Server URL (overrides the global --url).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Load the product document's example pipelines, triggers and cluster (idempotent)."""
    from bud.cli.demo import load_demo

    with client_for(ctx, url) as client:
        result = load_demo(client)
    if printed_json(as_json, result):
        return
    console = render.out()
    for line in result["created"]:
        console.print(Text("created  ", style="green") + Text(line))
    for line in result["existing"]:
        console.print(Text("exists   ", style="dim") + Text(line))
    console.print()
    console.print("Next, try:")
    for cmd in NEXT_STEPS:
        console.print(Text(f"  {cmd}", style="cyan"))
