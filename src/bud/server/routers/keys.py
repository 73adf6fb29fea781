"""API keys: create (the key is shown once), list, revoke. Admin scope (SCOPE_RULES)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from bud import schemas
from bud.server.responses import Json
from bud.services.keys import KeyService

router = APIRouter(tags=["api-keys"])


def _keys(request: Request) -> KeyService:
    keys: KeyService = request.app.state.keys
    return keys


class KeyIn(BaseModel):
    scope: Any = None
    name: Any = None


@router.post("/v1/api-keys", status_code=201, response_model=schemas.ApiKeyCreated)
async def api_keys_create(body: KeyIn, request: Request) -> Json:
    """A new key with a scope (read, write or admin); the answer holds the key, once."""
    return Json(await _keys(request).create(body.scope, body.name), status_code=201)


@router.get("/v1/api-keys", response_model=schemas.Items[schemas.ApiKey])
async def api_keys_list(request: Request) -> Json:
    """Every key: id, name, scope, its first characters, when created and revoked."""
    return Json(await _keys(request).list())


@router.delete("/v1/api-keys/{key_id}", response_model=schemas.ApiKey)
async def api_keys_revoke(key_id: str, request: Request) -> Json:
    """Revoke a key: requests carrying it are refused from now on (within 2 s elsewhere)."""
    return Json(await _keys(request).revoke(key_id))
