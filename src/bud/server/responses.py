"""Fast JSON responses and the error mapping (one table: BudError subclasses carry status)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from bud.errors import BadRequestError, BudError, NotFoundError, ServerError, ValidationError


class Json(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def error_response(exc: BudError, headers: dict[str, str] | None = None) -> Response:
    return Json(exc.to_dict(), status_code=exc.status_code, headers=headers)


async def bud_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BudError)
    retry_after = exc.details.get("retry_after") if isinstance(exc.details, dict) else None
    if exc.status_code == 429 and isinstance(retry_after, int | float):
        return error_response(exc, headers={"Retry-After": str(int(retry_after))})
    return error_response(exc)


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


async def request_validation_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    items = []
    for e in errors:
        path = _loc(e.get("loc", ()))
        message = e.get("msg", "invalid")
        if e.get("type") == "json_invalid":
            return error_response(
                BadRequestError(
                    f"request body is not valid JSON: {e.get('ctx', {}).get('error', message)}",
                    details={"path": "body"},
                )
            )
        items.append({"path": path, "message": f"{path}: {message}"})
    first = items[0]["message"] if items else "invalid request"
    return error_response(
        ValidationError(first, details={"path": items[0]["path"] if items else "", "errors": items})
    )


async def http_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(NotFoundError(f"no route {_request.url.path}"))
    err = BudError(str(exc.detail))
    return Json(
        {"error": {"code": "http_error", "message": err.message, "details": {}}},
        status_code=exc.status_code,
    )


async def unhandled_handler(_request: Request, exc: Exception) -> Response:
    return error_response(ServerError(f"internal error: {type(exc).__name__}"))
