"""The web UI: a hand-written single-page app (vanilla ES modules, one CSS file).

``mount(app)`` serves ``index.html`` at ``/`` and the static files at ``/static``. The app
routes in the browser with the URL hash (``#/pipelines/pipe_x/triggers``) and talks to the
REST API under ``/v1/`` with ``fetch``; nothing here renders data on the server.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import FileResponse, RedirectResponse
from starlette.staticfiles import StaticFiles

from bud.web.docs import mount_docs

STATIC_DIR = Path(__file__).parent / "static"

# The UI only ever loads its own files and calls its own API: a strict policy means event
# data (untrusted) can never pull in a script even if some rendering path slipped.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
INDEX_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def mount(app: FastAPI) -> None:
    """Add the UI (``/``, ``/ui``, ``/static``) and the API docs pages to ``app``."""

    async def index() -> FileResponse:
        return FileResponse(
            STATIC_DIR / "index.html", media_type="text/html", headers=INDEX_HEADERS
        )

    async def ui_redirect() -> RedirectResponse:
        return RedirectResponse("/")

    app.add_api_route("/", index, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route("/ui", ui_redirect, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    mount_docs(app)
