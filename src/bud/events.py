"""The event envelope and the catalog of event types with the JSON Schemas of their data."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import orjson
import referencing
import referencing.exceptions
import referencing.jsonschema

from bud.errors import PayloadTooLargeError, ValidationError
from bud.ids import new_id
from bud.timeutil import now, parse_iso, to_iso

EVENT_ID_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
EVENT_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
ENVELOPE_FIELDS = ("event_type", "event_id", "timestamp", "source", "data")
CAUSATION_FIELDS = ("correlation_id", "causation_id", "depth")
DEFAULT_MAX_EVENT_BYTES = 256 * 1024
# Keywords whose string value is a reference to another schema.
_REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
# Keywords whose values are data, not subschemas: a "$ref" inside them is not a reference.
_DATA_KEYWORDS = frozenset({"const", "default", "enum", "examples", "example"})


def _never_retrieve(uri: str) -> referencing.Resource[Any]:
    raise referencing.exceptions.NoSuchResource(ref=uri)  # type: ignore[call-arg]


# Schemas are resolved only against themselves: validation never fetches anything.
NO_FETCH_REGISTRY: referencing.Registry[Any] = referencing.Registry(
    retrieve=_never_retrieve  # type: ignore[call-arg]  # an attrs field mypy does not see
)


def schema_validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A validator for ``schema`` that resolves only references inside the schema itself."""
    return jsonschema.Draft202012Validator(schema, registry=NO_FETCH_REGISTRY)


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
            found = schema_validator(self.schema)
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
_EXECUTION = {
    "execution_id": _S,
    "pipeline_id": _S,
    "pipeline_name": _NS,
    "pipeline_version": {"type": "integer"},
    "trigger_id": _NS,
    "event_id": _NS,
    "event_type": _NS,
    "status": {"enum": ["succeeded", "failed", "cancelled"]},
    "error": _NS,
    "duration_seconds": {"type": ["number", "null"]},
    "started_at": _NS,
    "finished_at": _NS,
}
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
            "deployment.ready",
            "Deployment is running (it left pending)",
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
        *(
            EventType(
                f"execution.{status}",
                f"A pipeline execution {status}" + (" (see error)" if status == "failed" else ""),
                _obj(["execution_id", "pipeline_id", "status"], _EXECUTION),
                True,
                {
                    "execution_id": "exe_123",
                    "pipeline_id": "pipe_abc123",
                    "pipeline_name": "auto-deploy",
                    "pipeline_version": 1,
                    "trigger_id": "trig_xyz789",
                    "event_id": "evt_456",
                    "event_type": "model.added",
                    "status": status,
                    "error": "step deploy failed: insufficient GPU memory"
                    if status == "failed"
                    else ("cancelled by request" if status == "cancelled" else None),
                    "duration_seconds": 12.5,
                    "started_at": "2026-01-05T09:00:00Z",
                    "finished_at": "2026-01-05T09:00:12.500000Z",
                },
            )
            for status in ("succeeded", "failed", "cancelled")
        ),
        EventType(
            "schedule.tick",
            "A schedule trigger's tick (fired by its cron or interval, never published)",
            _obj(
                ["trigger_id", "scheduled_time"],
                {
                    "trigger_id": _S,
                    "schedule_id": _S,
                    "pipeline_id": _S,
                    "scheduled_time": {"type": "string", "format": "date-time"},
                    "fired_at": {"type": "string", "format": "date-time"},
                    "missed_ticks": {"type": "integer", "minimum": 0},
                    "schedule": {"type": "object"},
                },
            ),
            True,
            {
                "trigger_id": "trig_nightly",
                "schedule_id": "trig_nightly",
                "pipeline_id": "pipe_abc123",
                "scheduled_time": "2026-01-05T08:00:00Z",
                "fired_at": "2026-01-05T08:00:00.412000Z",
                "missed_ticks": 0,
                "schedule": {"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"},
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
    """Refuse anything but a valid JSON Schema whose references all point inside itself."""
    if not isinstance(schema, dict):
        raise ValidationError("schema must be a JSON Schema object", details={"path": "schema"})
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValidationError(
            f"schema is not a valid JSON Schema: {exc.message}", details={"path": "schema"}
        ) from exc
    resource = referencing.jsonschema.DRAFT202012.create_resource(schema)
    resolver = NO_FETCH_REGISTRY.with_resource("urn:bud:schema", resource).resolver(
        "urn:bud:schema"
    )
    for path, keyword, ref, nested_id in _references(schema, "schema", nested_id=False):
        if not ref.startswith("#"):
            raise ValidationError(
                f"{path}: {keyword} {ref!r} points outside the schema; only local references "
                "('#/$defs/...') are allowed, the server never fetches schemas",
                details={"path": path, "ref": ref},
            )
        if nested_id:
            continue  # resolved against a nested $id resource: left to validation
        try:
            resolver.lookup(ref)
        except referencing.exceptions.Unresolvable as exc:
            raise ValidationError(
                f"{path}: {keyword} {ref!r} does not resolve inside the schema",
                details={"path": path, "ref": ref},
            ) from exc


def _references(node: Any, path: str, *, nested_id: bool) -> Iterator[tuple[str, str, str, bool]]:
    """(path, keyword, reference, under a nested $id) for every reference in a schema."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}"
            if key in _REF_KEYWORDS and isinstance(value, str):
                yield where, key, value, nested_id
            elif key not in _DATA_KEYWORDS:
                inner = nested_id or (isinstance(value, dict) and "$id" in value)
                yield from _references(value, where, nested_id=inner)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            inner = nested_id or (isinstance(value, dict) and "$id" in value)
            yield from _references(value, f"{path}[{i}]", nested_id=inner)


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
        if not isinstance(ts_raw, str) or len(ts_raw) > 64:
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
        try:
            error = jsonschema.exceptions.best_match(etype.validator().iter_errors(dict(data)))
        except referencing.exceptions.Unresolvable as exc:
            raise ValidationError(
                f"{where}.data cannot be checked: the schema of {event_type} has a reference "
                f"that does not resolve ({exc}); register the type again with a fixed schema",
                details={"path": f"{where}.data"},
            ) from exc
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
    for name in ("correlation_id", "causation_id"):
        value = raw.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > 128):
            raise ValidationError(
                f"{where}.{name} must be a string of at most 128 characters",
                details={"path": f"{where}.{name}"},
            )
    test = raw.get("test", False)
    if test is None:
        test = False
    if not isinstance(test, bool):
        raise ValidationError(
            f"{where}.test must be a boolean (true or false), got {test!r}",
            details={"path": f"{where}.test"},
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
        "test": test,
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
