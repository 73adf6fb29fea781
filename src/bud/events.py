"""The event envelope and the catalog of event types with the JSON Schemas of their data."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import orjson

from bud.errors import PayloadTooLargeError, ValidationError
from bud.ids import new_id
from bud.timeutil import now, parse_iso, to_iso

EVENT_ID_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
EVENT_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
ENVELOPE_FIELDS = ("event_type", "event_id", "timestamp", "source", "data")
CAUSATION_FIELDS = ("correlation_id", "causation_id", "depth")
DEFAULT_MAX_EVENT_BYTES = 256 * 1024


@dataclass(frozen=True)
class EventType:
    name: str
    description: str = ""
    schema: dict[str, Any] = field(default_factory=dict)
    builtin: bool = False
    example: dict[str, Any] = field(default_factory=dict)

    def validator(self) -> jsonschema.Draft202012Validator:
        """The schema's validator, built once (building one costs more than using it)."""
        found = self.__dict__.get("_validator")
        if found is None:
            found = jsonschema.Draft202012Validator(self.schema)
            object.__setattr__(self, "_validator", found)
        return found

    def properties(self) -> set[str]:
        props = self.schema.get("properties", {})
        return set(props) if isinstance(props, dict) else set()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "schema": self.schema,
            "builtin": self.builtin,
            "example": self.example,
        }


def _obj(required: list[str], props: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": required,
        "properties": props,
        "additionalProperties": True,
    }


_S = {"type": "string"}
_NS = {"type": ["string", "null"]}
_MODEL = {
    "model_id": _S,
    "model_name": _S,
    "model_source": _S,
    "created_by": _NS,
    "uri": _NS,
}
_DEPLOYMENT = {
    "deployment_id": _S,
    "deployment_name": _S,
    "model_id": _S,
    "model_name": _NS,
    "cluster_id": _S,
    "environment": _NS,
}
_CLUSTER = {
    "cluster_id": _S,
    "cluster_name": _NS,
    "environment": _NS,
    "previous_status": _NS,
    "reason": _NS,
}

BUILTIN_EVENT_TYPES: dict[str, EventType] = {
    t.name: t
    for t in (
        EventType(
            "model.added",
            "New model registered",
            _obj(["model_id"], _MODEL),
            True,
            {
                "model_id": "model_xyz789",
                "model_name": "Llama-3.2-1B",
                "model_source": "hugging_face",
                "created_by": "user@example.com",
                "auto_deploy": True,
            },
        ),
        EventType(
            "model.updated",
            "Model metadata changed",
            _obj(["model_id"], {**_MODEL, "changes": {"type": "object"}}),
            True,
            {
                "model_id": "model_xyz789",
                "model_name": "Llama-3.2-1B",
                "model_source": "hugging_face",
                "changes": {"auto_deploy": True},
            },
        ),
        EventType(
            "deployment.created",
            "New deployment started",
            _obj(["deployment_id"], _DEPLOYMENT),
            True,
            {
                "deployment_id": "dep_123",
                "deployment_name": "Llama-3.2-1B-auto",
                "model_id": "model_xyz789",
                "model_name": "Llama-3.2-1B",
                "cluster_id": "cluster_prod",
                "environment": "production",
            },
        ),
        EventType(
            "deployment.failed",
            "Deployment failed",
            _obj(["deployment_id"], {**_DEPLOYMENT, "error_message": _S}),
            True,
            {
                "deployment_id": "dep_123",
                "deployment_name": "Llama-3.2-1B-auto",
                "model_id": "model_xyz789",
                "cluster_id": "cluster_prod",
                "environment": "production",
                "error_message": "insufficient GPU memory",
            },
        ),
        EventType(
            "cluster.ready",
            "Cluster becomes available",
            _obj(["cluster_id"], _CLUSTER),
            True,
            {
                "cluster_id": "cluster_prod",
                "cluster_name": "Production",
                "environment": "production",
                "previous_status": "unhealthy",
                "reason": "health check passed",
            },
        ),
        EventType(
            "cluster.unhealthy",
            "Cluster health degraded",
            _obj(["cluster_id"], _CLUSTER),
            True,
            {
                "cluster_id": "cluster_prod",
                "cluster_name": "Production",
                "environment": "production",
                "previous_status": "ready",
                "reason": "health check failed",
            },
        ),
        EventType(
            "trigger.tripped",
            "A trigger's circuit breaker disabled it (it fired too often)",
            _obj(
                ["trigger_id"],
                {
                    "trigger_id": _S,
                    "trigger_name": _NS,
                    "pipeline_id": _S,
                    "event_type": _S,
                    "reason": _S,
                    "fires": {"type": "integer"},
                    "window_seconds": {"type": "number"},
                },
            ),
            True,
            {
                "trigger_id": "trig_xyz789",
                "trigger_name": "auto-deploy",
                "pipeline_id": "pipe_abc123",
                "event_type": "model.added",
                "reason": "circuit breaker tripped: more than 600 fires in 60s",
                "fires": 600,
                "window_seconds": 60,
            },
        ),
    )
}


def validate_event_type_name(name: str) -> None:
    if not isinstance(name, str) or not EVENT_TYPE_RE.match(name):
        raise ValidationError(
            f"event type name {name!r} is not valid: use lowercase dotted words such as "
            "'team.thing_happened'",
            details={"path": "name"},
        )


def check_schema(schema: Any) -> None:
    if not isinstance(schema, dict):
        raise ValidationError("schema must be a JSON Schema object", details={"path": "schema"})
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValidationError(
            f"schema is not a valid JSON Schema: {exc.message}", details={"path": "schema"}
        ) from exc


def normalize_event(
    raw: Any,
    types: Mapping[str, EventType],
    *,
    where: str = "event",
    max_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    default_source: str = "api",
) -> dict[str, Any]:
    """Validate one published envelope and return it complete (id, timestamp, source filled)."""
    if not isinstance(raw, Mapping):
        raise ValidationError(f"{where} must be a JSON object", details={"path": where})
    event_type = raw.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise ValidationError(
            f"{where}.event_type is required", details={"path": f"{where}.event_type"}
        )
    etype = types.get(event_type)
    if etype is None:
        known = ", ".join(sorted(types))
        raise ValidationError(
            f"{where}.event_type: unknown event type {event_type!r}; known types: {known}",
            details={"path": f"{where}.event_type", "known": sorted(types)},
        )
    data = raw.get("data", {})
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ValidationError(
            f"{where}.data must be a JSON object", details={"path": f"{where}.data"}
        )
    event_id = raw.get("event_id") or new_id("evt")
    if not isinstance(event_id, str) or not EVENT_ID_RE.match(event_id):
        raise ValidationError(
            f"{where}.event_id {event_id!r} is not valid: "
            "1-128 characters of letters, digits, _ . : -",
            details={"path": f"{where}.event_id"},
        )
    ts_raw = raw.get("timestamp")
    if ts_raw is None:
        timestamp = to_iso(now())
    else:
        if not isinstance(ts_raw, str):
            raise ValidationError(
                f"{where}.timestamp must be an ISO 8601 string",
                details={"path": f"{where}.timestamp"},
            )
        try:
            parse_iso(ts_raw)
        except ValueError as exc:
            raise ValidationError(
                f"{where}.timestamp {ts_raw!r} is not an ISO 8601 time",
                details={"path": f"{where}.timestamp"},
            ) from exc
        timestamp = ts_raw
    source = raw.get("source") or default_source
    if not isinstance(source, str) or len(source) > 128:
        raise ValidationError(
            f"{where}.source must be a string of at most 128 characters",
            details={"path": f"{where}.source"},
        )
    size = len(orjson.dumps(data))
    if size > max_bytes:
        raise PayloadTooLargeError(
            f"{where}.data is {size} bytes, over the limit of {max_bytes} bytes",
            details={"path": f"{where}.data", "size": size, "limit": max_bytes},
        )
    if etype.schema:
        error = jsonschema.exceptions.best_match(etype.validator().iter_errors(dict(data)))
        if error is not None:
            loc = ".".join(str(p) for p in error.absolute_path)
            path = f"{where}.data" + (f".{loc}" if loc else "")
            raise ValidationError(
                f"{path}: {error.message} (schema of {event_type})", details={"path": path}
            )
    depth = raw.get("depth", 0) or 0
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
        raise ValidationError(
            f"{where}.depth must be a non-negative integer", details={"path": f"{where}.depth"}
        )
    envelope: dict[str, Any] = {
        "event_type": event_type,
        "event_id": event_id,
        "timestamp": timestamp,
        "source": source,
        "data": dict(data),
        "correlation_id": raw.get("correlation_id") or event_id,
        "causation_id": raw.get("causation_id"),
        "depth": depth,
        "test": bool(raw.get("test", False)),
    }
    return envelope


# Test events and dry runs take partial events (issue 12).
def normalize_partial_event(
    raw: Any,
    types: Mapping[str, EventType],
    *,
    where: str = "event",
    max_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    default_source: str = "api",
) -> tuple[dict[str, Any], list[str]]:
    """Like ``normalize_event``, but a mismatch of ``data`` with its type's schema is no
    refusal: every one is returned as a warning beside the envelope. The envelope itself
    (type, id, timestamp, source, size) is still checked."""
    event_type = raw.get("event_type") if isinstance(raw, Mapping) else None
    etype = types.get(event_type) if isinstance(event_type, str) else None
    if etype is None or not etype.schema:
        return normalize_event(
            raw, types, where=where, max_bytes=max_bytes, default_source=default_source
        ), []
    lenient = {**types, etype.name: EventType(etype.name, etype.description, {}, etype.builtin)}
    envelope = normalize_event(
        raw, lenient, where=where, max_bytes=max_bytes, default_source=default_source
    )
    warnings = []
    for error in sorted(
        etype.validator().iter_errors(envelope["data"]),
        key=lambda e: ([str(p) for p in e.absolute_path], e.message),
    ):
        loc = ".".join(str(p) for p in error.absolute_path)
        path = f"{where}.data" + (f".{loc}" if loc else "")
        warnings.append(f"{path}: {error.message} (schema of {etype.name})")
    return envelope, warnings
