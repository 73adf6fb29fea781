"""The ASGI app: REST API under /v1/, OpenAPI, /healthz, /metrics and the web UI at /."""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from bud import demo as demo_setup
from bud.errors import BudError
from bud.redact import REDACTOR, install_logging
from bud.server import responses
from bud.server.jsonbody import JsonContract
from bud.server.logs import RequestContext
from bud.server.middleware import ApiKeyAuth, BodyLimit, BrowserGuard
from bud.server.openapi import build_openapi, operation_id
from bud.server.routers import (
    demo,
    events,
    executions,
    hooks,
    insights,
    keys,
    meta,
    pipelines,
    platform,
    stream,
    triggers,
)
from bud.services import Bud
from bud.services.config import redaction_source
from bud.services.keys import KeyService
from bud.settings import Settings

log = logging.getLogger("bud.server")

DESCRIPTION = """Event triggers with filters start DAG pipelines of actions.

Every error answers `{"error": {"code", "message", "details"}}`. When the server has API keys
(`BUD_API_KEYS`), every `/v1/` request needs one, as `X-API-Key: <key>` or
`Authorization: Bearer <key>`. Operation ids are the SDK's calls: `pipelines_create` is
`client.pipelines.create`. Every answer carries an `X-Request-ID` header (the request's own,
when it sent one)."""


def create_app(
    settings: Settings | None = None, *, bud: Bud | None = None, check_responses: bool = False
) -> FastAPI:
    """Build the app. ``check_responses``: check every success answer against its documented
    model (the test suite turns it on; see bud.server.openapi)."""
    settings = settings or (bud.settings if bud else Settings.load())
    core = bud or Bud(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _protect_secrets_in_logs(core)
        await core.start()
        await _seal_secrets(core)
        try:
            if settings.demo:
                await _load_demo(core)
            yield
        finally:
            await core.stop()
            REDACTOR.forget(f"settings:{id(core)}")
            REDACTOR.forget(redaction_source(core.engine))

    app = FastAPI(
        title="Bud Pipelines",
        version="0.1.0",
        lifespan=lifespan,
        description=DESCRIPTION,
        generate_unique_id_function=operation_id,
        docs_url=None,  # /docs and /redoc are served by bud.web from local assets (offline)
        redoc_url=None,
    )
    app.state.bud = core
    app.state.check_responses = check_responses
    app.add_exception_handler(BudError, responses.bud_error_handler)
    app.add_exception_handler(RequestValidationError, responses.request_validation_handler)
    app.add_exception_handler(HTTPException, responses.http_error_handler)
    app.add_exception_handler(Exception, responses.unhandled_handler)
    app.state.keys = KeyService(core.repo, settings.api_keys)
    for module in (
        insights,
        events,
        pipelines,
        triggers,
        executions,
        hooks,
        platform,
        meta,
        stream,
        keys,
    ):
        app.include_router(module.router)
    if settings.demo:
        app.state.demo_inbox = collections.deque(maxlen=200)
        app.include_router(demo.router)
    _mount_ui(app)
    app.add_middleware(JsonContract)  # innermost: sees bodies already within the size limit
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    # Always in place: a key stored through the API turns authentication on.
    app.add_middleware(ApiKeyAuth, keys=app.state.keys, metrics_token=settings.metrics_token)
    app.add_middleware(BrowserGuard, bind_host=settings.host, allowed_hosts=settings.allowed_hosts)
    app.add_middleware(RequestContext)  # outermost: 401 and 413 answers get an id and a log line

    def openapi() -> dict[str, Any]:
        return build_openapi(app)

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _protect_secrets_in_logs(core: Bud) -> None:
    """Mask the settings' secrets in every log line, before anything is logged."""
    settings = core.settings
    database_password = urlsplit(settings.database_url or "").password or ""
    REDACTOR.update(
        [
            *settings.api_keys,
            settings.secret_key or "",
            settings.metrics_token or "",
            database_password,
        ],
        source=f"settings:{id(core)}",
    )
    REDACTOR.update_config(
        settings.secrets, settings.channel_config(), source=redaction_source(core.engine)
    )
    install_logging(REDACTOR)  # uvicorn configured its loggers by now: cover its handlers too


async def _seal_secrets(core: Bud) -> None:
    """Load (or make, on first start) the key, encrypt rows stored before encryption existed."""
    sealed = await core.config.seal_stored()
    if sealed:
        log.info("encrypted %d stored secrets and channel configs", sealed)
    await core.config.refresh_redactions()


def _mount_ui(app: FastAPI) -> None:
    try:
        from bud.web import mount
    except ImportError:
        return
    mount(app)


async def _load_demo(core: Bud) -> None:
    """Load the demo in process, through the services; the slack channel defaults to the
    server's own inbox."""
    settings = core.settings
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "[::]") else settings.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    loaded = await demo_setup.load(core, f"http://{host}:{settings.port}/demo/slack")
    for line in loaded["created"]:
        log.info("demo: created %s", line)
    log.info("demo loaded: the product document's two example pipelines and cluster_prod")
