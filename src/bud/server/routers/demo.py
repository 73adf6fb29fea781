"""The demo's Slack inbox: with ``bud serve --demo`` and no Slack webhook configured, the
``slack`` channel points here, so a new user sees the notification arrive. These routes
exist only on a demo server (and only its OpenAPI document lists them)."""

from __future__ import annotations

import collections
import logging
from typing import Any

from fastapi import APIRouter, Body, Request

from bud import schemas
from bud.server.openapi import CheckedRoute
from bud.server.responses import Json

router = APIRouter(tags=["demo"], route_class=CheckedRoute)
log = logging.getLogger("bud.demo")


def _inbox(request: Request) -> collections.deque[dict[str, Any]]:
    inbox: collections.deque[dict[str, Any]] = request.app.state.demo_inbox
    return inbox


@router.post("/demo/slack", response_model=schemas.DemoAck)
async def demo_slack_receive(request: Request, body: dict[str, Any] = Body(...)) -> Json:
    """Receive a Slack incoming-webhook message (the demo's stand-in for Slack)."""
    _inbox(request).append(body)
    log.warning("demo slack inbox: %s", body.get("text"))
    return Json({"ok": True})


@router.get("/demo/slack", response_model=schemas.Items[dict[str, Any]])
async def demo_slack_messages(request: Request) -> Json:
    """The last 200 messages the demo's Slack inbox received, oldest first."""
    return Json({"items": list(_inbox(request))})
