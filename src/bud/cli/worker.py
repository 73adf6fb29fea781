"""``bud worker`` runs steps, timers and sweeps against a shared PostgreSQL store; no HTTP."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer
import yaml

from bud.cli.common import fail, require_server_extra

log = logging.getLogger("bud.worker")


def worker(
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="postgresql://... (the store the API nodes use)."),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", min=1, show_default="64", help="Steps run at once."),
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="Serve /metrics on this loopback port.")
    ] = None,
    nats_url: Annotated[
        str | None, typer.Option("--nats-url", help="NATS, for --nats-egress-subject.")
    ] = None,
    nats_egress_subject: Annotated[
        str | None,
        typer.Option("--nats-egress-subject", help="Publish execution.<status> events here."),
    ] = None,
    grace: Annotated[
        float,
        typer.Option("--grace", help="Seconds running steps get to finish on SIGTERM."),
    ] = 25.0,
    config: Annotated[
        Path | None, typer.Option("--config", help="A YAML settings file (else BUD_CONFIG).")
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning or error.")
    ] = "info",
) -> None:
    """Run steps, timers and sweeps for the API nodes that share a PostgreSQL store."""
    require_server_extra("worker")
    from bud.settings import Settings

    try:
        settings = Settings.load(
            config,
            database_url=database_url,
            workers=concurrency,
            nats_url=nats_url,
            nats_egress_subject=nats_egress_subject,
        )
    except (OSError, ValueError, yaml.YAMLError) as exc:
        fail(f"cannot load settings: {exc}")
    url = settings.database_url or ""
    if not url.startswith(("postgresql", "postgres")):
        fail(
            "bud worker needs a shared store: --database-url postgresql://... (BUD_DATABASE_URL); "
            "on the embedded SQLite store, bud serve runs the steps itself"
        )
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(_run(settings, metrics_port, grace))


async def _run(settings: object, metrics_port: int | None, grace: float) -> None:
    from bud.services import Bud
    from bud.settings import Settings

    assert isinstance(settings, Settings)
    core = Bud(settings, run_workers=True, kind="worker")
    await core.start()
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1", registry=core.engine.metrics.registry)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker %s running %d steps at once", core.engine.worker_id, settings.step_slots)
    await stop.wait()
    log.info("stopping: running steps get %gs to finish", grace)
    await core.stop(grace)
