"""The ASGI app: REST API under /v1/, OpenAPI, /healthz, /metrics and the web UI at /."""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from bud.errors import BudError
from bud.server import responses
from bud.server.jsonbody import JsonContract
from bud.server.middleware import ApiKeyAuth, BodyLimit, BrowserGuard
from bud.server.routers import (
    demo,
    events,
    executions,
    insights,
    meta,
    pipelines,
    platform,
    triggers,
)
from bud.services import Bud
from bud.settings import Settings

log = logging.getLogger("bud.server")


def create_app(settings: Settings | None = None, *, bud: Bud | None = None) -> FastAPI:
    settings = settings or (bud.settings if bud else Settings.load())
    core = bud or Bud(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await core.start()
        if settings.demo:
            await _load_demo(app)
        try:
            yield
        finally:
            await core.stop()

    app = FastAPI(
        title="Bud Pipelines",
        version="0.1.0",
        lifespan=lifespan,
        description="Event triggers with filters start DAG pipelines of actions.",
    )
    app.state.bud = core
    app.add_exception_handler(BudError, responses.bud_error_handler)
    app.add_exception_handler(RequestValidationError, responses.request_validation_handler)
    app.add_exception_handler(HTTPException, responses.http_error_handler)
    app.add_exception_handler(Exception, responses.unhandled_handler)
    for module in (insights, events, pipelines, triggers, executions, platform, meta):
        app.include_router(module.router)
    if settings.demo:
        app.state.demo_inbox = collections.deque(maxlen=200)
        app.include_router(demo.router)
    _mount_ui(app)
    app.add_middleware(JsonContract)  # innermost: sees bodies already within the size limit
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    if settings.api_keys:
        app.add_middleware(ApiKeyAuth, keys=settings.api_keys)
    app.add_middleware(BrowserGuard, bind_host=settings.host, allowed_hosts=settings.allowed_hosts)
    return app


def _mount_ui(app: FastAPI) -> None:
    try:
        from bud.web import mount
    except ImportError:
        return
    mount(app)


async def _load_demo(app: FastAPI) -> None:
    """Load the spec's example pipelines through the SDK once the server listens."""
    import asyncio

    from bud.cli.demo import load_demo
    from bud.client import BudClient
    from bud.errors import TransportError

    settings: Settings = app.state.bud.settings
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "[::]") else settings.host
    url = f"http://{host}:{settings.port}"

    def run() -> Any:
        with BudClient(
            base_url=url, api_key=settings.api_keys[0] if settings.api_keys else None
        ) as c:
            loaded = load_demo(c)
            if "slack" not in {channel.name for channel in c.channels.list()}:
                # No Slack webhook configured: deliver to this server's demo inbox instead.
                c.channels.set("slack", url=f"{url}/demo/slack")
            return loaded

    async def later() -> None:
        for _ in range(100):  # the server starts listening only after the lifespan started
            await asyncio.sleep(0.1)
            try:
                await asyncio.to_thread(run)
                log.info("demo loaded: the spec's two example pipelines and cluster_prod")
                return
            except TransportError:
                continue
            except Exception:
                log.exception("could not load the demo")
                return

    app.state.demo_task = asyncio.create_task(later())
