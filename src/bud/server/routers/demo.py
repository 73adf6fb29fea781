"""The demo's Slack inbox: with ``bud serve --demo`` and no Slack webhook configured, the
``slack`` channel points here, so a new user sees the notification arrive."""

from __future__ import annotations

import collections
import logging
from typing import Any

from fastapi import APIRouter, Body, Request

from bud.server.responses import Json

router = APIRouter(tags=["demo"])
log = logging.getLogger("bud.demo")


def _inbox(request: Request) -> collections.deque[dict[str, Any]]:
    inbox: collections.deque[dict[str, Any]] = request.app.state.demo_inbox
    return inbox


@router.post("/demo/slack")
async def receive(request: Request, body: dict[str, Any] = Body(...)) -> Json:
    _inbox(request).append(body)
    log.warning("demo slack inbox: %s", body.get("text"))
    return Json({"ok": True})


@router.get("/demo/slack")
async def messages(request: Request) -> Json:
    return Json({"items": list(_inbox(request))})
