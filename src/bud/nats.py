"""NATS JetStream: platform events in (a durable consumer), execution lifecycle events out.

Every API node (``bud serve --nats-url ...``) pulls from one durable consumer on the events
stream, so JetStream spreads the messages over the nodes and redelivers what a dead node
had not acknowledged. A message is acknowledged only after its event is committed (or, when
it can never be accepted, after it is on the dead-letter subject with its reason): nothing is
lost silently. Dedup is the store's: the event id is the envelope's, else the
``Nats-Msg-Id`` header, so a redelivered message stores and fires once.

Accepted shapes: the Bud envelope (``{"event_type", "data", ...}``) and CloudEvents in JSON
(``{"specversion", "type", "id", "source", "time", "data"}``). See docs/deployment.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson

from bud.engine.lifecycle import lifecycle_data
from bud.errors import BudError
from bud.settings import Settings

log = logging.getLogger("bud.nats")

BATCH = 200


class Rejected(Exception):
    """A message that can never be accepted; the reason goes with it to the dead letters."""


def to_envelope(body: bytes, headers: dict[str, str] | None) -> dict[str, Any]:
    """The Bud envelope of a message (Bud envelope or CloudEvents JSON); Rejected if neither."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Rejected(f"not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise Rejected("not a JSON object: an event envelope or a CloudEvent is expected")
    if "specversion" in obj:
        if "data_base64" in obj:
            raise Rejected("CloudEvents data_base64 is not supported: send JSON data")
        envelope: dict[str, Any] = {
            "event_type": obj.get("type"),
            "data": obj.get("data") if obj.get("data") is not None else {},
        }
        for key, field in (("id", "event_id"), ("source", "source"), ("time", "timestamp")):
            if obj.get(key) is not None:
                envelope[field] = obj[key]
    else:
        envelope = dict(obj)
    msg_id = (headers or {}).get("Nats-Msg-Id")
    if msg_id and not envelope.get("event_id"):
        envelope["event_id"] = msg_id
    return envelope


class NatsBridge:
    """The JetStream consumer (API nodes) and the lifecycle egress (every process)."""

    def __init__(self, settings: Settings, ingestor: Any, signals: Any, repo: Any, consume: bool):
        self.settings = settings
        self.ingestor = ingestor
        self.signals = signals
        self.repo = repo
        self.consume = consume
        self.nc: Any = None
        self.js: Any = None
        self._sub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._egress: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        import nats

        assert self.settings.nats_url is not None
        self.nc = await nats.connect(
            self.settings.nats_url,
            name="bud",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            allow_reconnect=True,
        )
        self.js = self.nc.jetstream()
        if self.consume:
            await self._ensure_stream(self.settings.nats_stream, self.settings.nats_subject)
            await self._ensure_stream(
                f"{self.settings.nats_stream}_DEAD_LETTER", self.settings.nats_dead_letter_subject
            )
            self._sub = await self.js.pull_subscribe(
                self.settings.nats_subject,
                durable=self.settings.nats_consumer,
                stream=self.settings.nats_stream,
            )
            self._task = asyncio.create_task(self._consume(), name="bud-nats")
        if self.settings.nats_egress_subject:
            self.signals.on_finished(self._finished)

    async def _ensure_stream(self, name: str, subject: str) -> None:
        from nats.js.errors import NotFoundError

        try:
            await self.js.stream_info(name)
        except NotFoundError:
            with contextlib.suppress(BudError):
                await self.js.add_stream(name=name, subjects=[subject])

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._egress:
            await asyncio.wait(self._egress, timeout=2.0)
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.drain()

    async def _consume(self) -> None:
        import nats.errors

        while not self._stopping:
            try:
                messages = await self._sub.fetch(BATCH, timeout=1.0)
            except nats.errors.TimeoutError:
                continue
            except Exception as exc:  # disconnected: the client reconnects by itself
                log.warning("fetching from NATS failed (%s); retrying", type(exc).__name__)
                await asyncio.sleep(0.5)
                continue
            try:
                await self.handle(messages)
            except Exception:
                log.exception("NATS batch not ingested; it will be redelivered")

    async def handle(self, messages: list[Any]) -> None:
        """Ingest a batch; dead-letter what can never be accepted; ack after the commit."""
        good: list[tuple[Any, dict[str, Any]]] = []
        for msg in messages:
            try:
                envelope = to_envelope(msg.data, msg.headers)
                self.ingestor.normalize([envelope], default_source="nats")
            except (Rejected, BudError) as exc:
                reason = exc.message if isinstance(exc, BudError) else str(exc)
                await self._dead_letter(msg, reason)
                await msg.ack()
                continue
            good.append((msg, envelope))
        if not good:
            return
        try:
            await self.ingestor.ingest([e for _, e in good], default_source="nats")
        except Exception:
            for msg, _ in good:  # not committed: JetStream redelivers them
                with contextlib.suppress(Exception):
                    await msg.nak(delay=1.0)
            raise
        for msg, _ in good:
            await msg.ack()

    async def _dead_letter(self, msg: Any, reason: str) -> None:
        headers = {
            "Bud-Reason": reason[:1000].replace("\n", " "),
            "Bud-Subject": msg.subject,
        }
        await self.js.publish(self.settings.nats_dead_letter_subject, msg.data, headers=headers)
        log.warning("NATS message on %s dead-lettered: %s", msg.subject, reason)

    async def lag(self) -> dict[str, Any]:
        """The consumer's backlog, for /healthz and ``bud status``."""
        info: dict[str, Any] = {"connected": bool(self.nc and self.nc.is_connected)}
        if self._sub is not None and info["connected"]:
            with contextlib.suppress(Exception):
                consumer = await self._sub.consumer_info()
                info.update(pending=consumer.num_pending, unacked=consumer.num_ack_pending)
        return info

    def _finished(self, execution_id: str, status: str) -> None:
        task = asyncio.create_task(self._publish_lifecycle(execution_id, status))
        self._egress.add(task)
        task.add_done_callback(self._egress.discard)

    async def _publish_lifecycle(self, execution_id: str, status: str) -> None:
        try:
            async with self.repo.read() as session:
                row = await session.get_execution(execution_id)
                if row is None:
                    return
                pipeline = await session.get_pipeline(row["pipeline_id"])
            # The same data as the execution.<status> event the store ingests.
            body = {
                "event_type": f"execution.{status}",
                "data": lifecycle_data(row, pipeline["name"] if pipeline else None),
            }
            subject = f"{self.settings.nats_egress_subject}.{status}"
            await self.nc.publish(subject, orjson.dumps(body))
        except Exception:
            log.exception("publishing execution %s to NATS failed", execution_id)
