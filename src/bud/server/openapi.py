"""The OpenAPI document as a contract, and the check that answers keep to it.

Rules (docs/api.md):

- The operation id is the handler's function name, and handlers are named for the SDK call
  that sends the request: ``<resource>_<method>`` (``pipelines_create`` is
  ``client.pipelines.create``, ``event_triggers_test`` is ``client.event_triggers.test``).
- Every operation has a description (the handler's docstring) and a schema for its success
  answer (``bud.schemas``).
- Every operation documents the error answers it can give, all with the one envelope
  ``{"error": {"code", "message", "details"}}``: 401 on ``/v1/`` (when API keys are
  configured), 422 when it takes a body or query parameters, 400 and 413 when it takes a
  body, 404 when its path names an object that must exist (not on PUT, which sets it), 409
  where a state or an id can conflict.
- ``/v1/`` operations carry the API-key security scheme (``X-API-Key`` or a Bearer token).

Handlers answer with pre-encoded JSON (``responses.Json``), so FastAPI does not check them
against their ``response_model``. ``CheckedRoute`` does, when the app was built with
``check_responses=True`` (the test suite builds it so): a success answer that does not parse
as its model raises ``ResponseContractError``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import TypeAdapter
from starlette.responses import Response

from bud.schemas import ErrorResponse

__all__ = ["CheckedRoute", "ResponseContractError", "build_openapi", "operation_id"]

ERROR_TEXT = {
    400: "The request body is not readable JSON (`bad_request`).",
    401: "API keys are configured and the request carries none that is valid (`unauthenticated`).",
    404: "No object with that id or name (`not_found`).",
    409: "The object's state or id conflicts with the request (`conflict`).",
    413: "The request body or an event's data is over its size limit (`payload_too_large`).",
    422: "The input breaks a rule; `message` and `details.path` say which and where "
    "(`validation_error`, `invalid_filter`, `template_error`).",
}

# Operations that can answer 409: an id that is taken, or a state that forbids the change.
CONFLICTS = {
    "pipelines_create",
    "event_triggers_create",
    "event_types_register",
    "clusters_create",
    "executions_cancel",
    "executions_retry",
    "hooks_deliver",
}

# Operations that take no API key: the request carries its own credential (401 when it fails).
KEYLESS = {
    "hooks_deliver": "The `X-Hub-Signature-256` signature is missing or wrong, or "
    "`X-Bud-Timestamp` is outside the tolerance (`unauthenticated`); nothing is stored.",
}

SECURITY_SCHEMES = {
    "ApiKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "One of the keys in BUD_API_KEYS. Needed on /v1/ only when keys are "
        "configured.",
    },
    "BearerKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "The same key as `Authorization: Bearer <key>`.",
    },
}


def operation_id(route: APIRoute) -> str:
    return route.name


class ResponseContractError(AssertionError):
    """An answer does not match the model its operation documents."""


class CheckedRoute(APIRoute):
    """An APIRoute that, when the app asks for it, checks success answers against the model."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        adapter: TypeAdapter[Any] | None = None

        async def checked(request: Request) -> Response:
            nonlocal adapter
            response = await handler(request)
            if getattr(request.app.state, "check_responses", False):
                if adapter is None and self.response_model is not None:
                    adapter = TypeAdapter(self.response_model)
                _check(self, adapter, response)
            return response

        return checked


def _check(route: APIRoute, adapter: TypeAdapter[Any] | None, response: Response) -> None:
    where = f"{route.name} ({', '.join(sorted(route.methods or ()))} {route.path})"
    if not 200 <= response.status_code < 300:
        return
    documented = {route.status_code or 200} | {
        int(k) for k in route.responses if str(k).isdigit() and 200 <= int(k) < 300
    }
    if response.status_code not in documented:
        raise ResponseContractError(
            f"{where} answered {response.status_code}; its document says {sorted(documented)}"
        )
    if response.status_code == 204:
        if response.body:
            raise ResponseContractError(f"{where} answered 204 with a body")
        return
    if adapter is None or not response.media_type or "json" not in response.media_type:
        return
    try:
        adapter.validate_json(bytes(response.body))
    except ValueError as exc:
        raise ResponseContractError(f"{where}: the answer does not match its model: {exc}") from exc


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The document FastAPI generates, with the error envelope, errors and security added."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    envelope = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in envelope.pop("$defs", {}).items():
        schemas[name] = sub
    schemas["ErrorResponse"] = envelope
    components["securitySchemes"] = copy.deepcopy(SECURITY_SCHEMES)
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            _add_errors(path, method, op)
    app.openapi_schema = doc
    return doc


def _error(status: int) -> dict[str, Any]:
    return {
        "description": ERROR_TEXT[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }


def _add_errors(path: str, method: str, op: dict[str, Any]) -> None:
    responses: dict[str, Any] = op.setdefault("responses", {})
    params = op.get("parameters", [])
    statuses: set[int] = set()
    if op.get("operationId") in KEYLESS:
        statuses.add(401)
        op["security"] = []
    elif path.startswith("/v1/"):
        statuses.add(401)
        op["security"] = [{"ApiKeyHeader": []}, {"BearerKey": []}, {}]
    else:
        op["security"] = []
    if "requestBody" in op or any(p.get("in") == "query" for p in params):
        statuses.add(422)
    if "requestBody" in op:
        statuses |= {400, 413}
    if method != "put" and any(p.get("in") == "path" for p in params):
        statuses.add(404)  # a PUT sets the object its path names: it need not exist
    if op.get("operationId") in CONFLICTS:
        statuses.add(409)
    responses.pop("422", None)
    for status in sorted(statuses):
        responses[str(status)] = _error(status)
    if op.get("operationId") in KEYLESS:
        responses["401"]["description"] = KEYLESS[op["operationId"]]
