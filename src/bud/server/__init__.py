"""The HTTP server: ``create_app`` builds the ASGI app, ``run`` serves it with uvicorn."""

from __future__ import annotations

from typing import Any

from bud.server.app import create_app
from bud.settings import Settings

__all__ = ["create_app", "run"]


class UnsafeBind(RuntimeError):
    pass


def check_bind(settings: Settings) -> None:
    if not settings.is_loopback and not settings.api_keys:
        raise UnsafeBind(
            f"refusing to listen on {settings.host}: without API keys the server only binds to "
            "loopback. Set BUD_API_KEYS (comma-separated) to listen beyond 127.0.0.1."
        )


def run(settings: Settings, *, log_level: str | None = None) -> None:
    """Serve until stopped; logs go to stderr in ``settings.log_format`` (docs/operations.md)."""
    import uvicorn

    from bud.server.logs import configure

    check_bind(settings)
    from bud.server.routers.stream import close_streams

    level = log_level or settings.log_level
    configure(level, settings.log_format)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=level,
        log_config=None,  # our handler and format (configure above) for uvicorn's loggers too
        access_log=False,  # RequestContext writes the access line, with the request id
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    handle_exit = server.handle_exit

    def exit_closing_streams(sig: int, frame: Any) -> None:
        # uvicorn waits for open responses before the lifespan ends: end the live streams first.
        close_streams(app)
        handle_exit(sig, frame)

    server.handle_exit = exit_closing_streams  # type: ignore[method-assign]
    server.run()
