"""Inbound webhooks: ``POST /v1/hooks/{hook_id}`` turns a signed JSON body into an event.

A hook names a custom event type (registered when the hook is created, with an optional
schema) and has a secret, generated at creation, answered once and stored encrypted
(``bud.crypto``). A delivery is accepted when:

1. ``X-Hub-Signature-256: sha256=<hex>`` is the HMAC-SHA256 of the signed content under the
   hook's secret (compared in constant time). The signed content is the raw body (GitHub's
   form); when the sender adds ``X-Bud-Timestamp: <unix seconds>``, it is
   ``<timestamp>.<raw body>`` instead, so the timestamp cannot be changed in transit.
2. The timestamp, when given, is within ``TOLERANCE_SECONDS`` (300) of the server's clock.
3. It carries a delivery id (``X-GitHub-Delivery``, ``X-Hub-Delivery`` or
   ``X-Bud-Delivery``, at most 128 characters). The event id is derived from the hook and the
   delivery id, so the store keeps each delivery once: a delivery id seen before stores
   nothing and answers 409 ``duplicate_delivery``.
4. The body is a JSON object: it becomes the event's ``data`` (checked against the type's
   schema, 422 otherwise), with ``source`` ``hook:<hook_id>``.

A bad or missing signature, or a stale timestamp, answers 401 and stores nothing.
"""

from __future__ import annotations

import hmac
import secrets as _random
from collections.abc import Mapping
from typing import Any

import orjson

from bud.crypto import box_for
from bud.engine.core import Engine
from bud.engine.records import derived_event_id
from bud.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from bud.events import validate_event_type_name
from bud.ids import new_id
from bud.services.common import iso_times
from bud.services.events import EventService
from bud.signing import sign

__all__ = ["DELIVERY_HEADERS", "TOLERANCE_SECONDS", "DuplicateDeliveryError", "HookService", "sign"]

SECRET_PREFIX = "whsec_"
SIGNATURE_HEADER = "x-hub-signature-256"
TIMESTAMP_HEADER = "x-bud-timestamp"
DELIVERY_HEADERS = ("x-github-delivery", "x-hub-delivery", "x-bud-delivery")
TOLERANCE_SECONDS = 300


class DuplicateDeliveryError(ConflictError):
    """This delivery id was accepted before: nothing is stored again."""

    code = "duplicate_delivery"


def _out(row: Mapping[str, Any], secret: str | None = None) -> dict[str, Any]:
    out = iso_times({k: row[k] for k in ("id", "name", "event_type", "created_at")}, "created_at")
    out["url"] = f"/v1/hooks/{row['id']}"
    if secret is not None:
        out["secret"] = secret
    return out


class HookService:
    def __init__(self, engine: Engine, events: EventService) -> None:
        self.engine = engine
        self.repo = engine.repo
        self.events = events

    async def create(
        self, event_type: Any, name: Any = None, schema: Any = None, description: Any = None
    ) -> dict[str, Any]:
        """A new hook; the answer is the only place its secret is ever shown."""
        if not isinstance(event_type, str):
            raise ValidationError(
                "event_type: give the custom event type deliveries become, such as 'github.push'",
                details={"path": "event_type"},
            )
        try:
            validate_event_type_name(event_type)
        except ValidationError as exc:
            raise ValidationError(exc.message, details={"path": "event_type"}) from exc
        known = self.engine.catalogue.event_types.get(event_type)
        if known is not None and known.builtin:
            raise ValidationError(
                f"event_type: {event_type} is a built-in event type; a hook needs a custom "
                "type such as 'github.push'",
                details={"path": "event_type"},
            )
        if name is not None and (not isinstance(name, str) or len(name) > 256):
            raise ValidationError(
                "name must be a string of at most 256 characters", details={"path": "name"}
            )
        if description is not None and not isinstance(description, str):
            raise ValidationError("description must be a string", details={"path": "description"})
        if schema is not None or known is None:
            await self.events.register_type(
                event_type,
                description
                or (known.description if known else f"deliveries of hook {name or event_type}"),
                schema,
            )
        secret = SECRET_PREFIX + _random.token_urlsafe(32)
        row = {
            "id": new_id("hook"),
            "name": name,
            "event_type": event_type,
            "secret": box_for(self.engine.settings).encrypt(secret),
            "created_at": self.engine.clock.now(),
        }
        async with self.repo.transaction() as session:
            await session.insert_hook(row)
        return _out(row, secret)

    async def list(self) -> dict[str, Any]:
        async with self.repo.read() as session:
            rows = await session.list_hooks()
        return {"items": [_out(r) for r in rows]}

    async def get(self, hook_id: str) -> dict[str, Any]:
        return _out(await self._row(hook_id))

    async def delete(self, hook_id: str) -> None:
        async with self.repo.transaction() as session:
            if not await session.delete_hook(hook_id):
                raise NotFoundError(f"hook {hook_id} not found", details={"hook_id": hook_id})

    async def _row(self, hook_id: str) -> dict[str, Any]:
        async with self.repo.read() as session:
            row = await session.get_hook(hook_id)
        if row is None:
            raise NotFoundError(f"hook {hook_id} not found", details={"hook_id": hook_id})
        return row

    async def deliver(
        self, hook_id: str, body: bytes, headers: Mapping[str, str]
    ) -> dict[str, Any]:
        """Check a delivery's signature, timestamp and delivery id; store its event."""
        row = await self._row(hook_id)
        secret = box_for(self.engine.settings).decrypt(row["secret"], what=f"hook {hook_id}")
        given = headers.get(SIGNATURE_HEADER)
        if not given:
            raise AuthenticationError(
                "X-Hub-Signature-256 is missing: sign the body with the hook's secret "
                "(sha256=<hex HMAC-SHA256>)",
                details={"path": "headers.x-hub-signature-256"},
            )
        timestamp = headers.get(TIMESTAMP_HEADER)
        expected = sign(secret, body, timestamp)
        if not hmac.compare_digest(given.strip().encode(), expected.encode()):
            raise AuthenticationError(
                "X-Hub-Signature-256 does not match the body signed with the hook's secret",
                details={"path": "headers.x-hub-signature-256"},
            )
        if timestamp is not None:
            try:
                sent = float(timestamp)
            except ValueError:
                sent = float("nan")
            now = self.engine.clock.now()
            if not abs(now - sent) <= TOLERANCE_SECONDS:
                raise AuthenticationError(
                    f"X-Bud-Timestamp {timestamp!r} is not within {TOLERANCE_SECONDS}s of the "
                    "server's clock (a replay, or a clock that is off)",
                    details={"path": "headers.x-bud-timestamp", "tolerance": TOLERANCE_SECONDS},
                )
        delivery = next((headers[h] for h in DELIVERY_HEADERS if headers.get(h)), None)
        if delivery is None or len(delivery) > 128:
            raise BadRequestError(
                "a delivery id is needed (X-GitHub-Delivery, X-Hub-Delivery or X-Bud-Delivery, "
                "at most 128 characters): it keeps a replayed delivery from being stored twice",
                details={"path": "headers.x-bud-delivery"},
            )
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadRequestError(f"the body is not JSON: {exc}", details={"path": "body"}) from exc
        if not isinstance(data, dict):
            raise ValidationError(
                "the body must be a JSON object (it becomes the event's data)",
                details={"path": "body"},
            )
        event_type = row["event_type"]
        event_id = derived_event_id(f"hook:{hook_id}:{delivery}", event_type)
        [envelope] = await self.engine.ingestor.ingest(
            [
                {
                    "event_type": event_type,
                    "event_id": event_id,
                    "source": f"hook:{hook_id}",
                    "data": data,
                }
            ],
            default_source=f"hook:{hook_id}",
        )
        if envelope["duplicate"]:
            raise DuplicateDeliveryError(
                f"delivery {delivery!r} of hook {hook_id} was accepted before (event "
                f"{event_id}); nothing was stored again",
                details={"delivery": delivery, "event_id": event_id},
            )
        async with self.repo.read() as session:
            executions = await session.list_executions(event_id=event_id, limit=1000, after=None)
        return {
            "hook_id": hook_id,
            "event_id": event_id,
            "event_type": event_type,
            "duplicate": False,
            "fired_count": envelope.get("fired_count", len(executions)),
            "executions": sorted(e["id"] for e in executions),
        }
