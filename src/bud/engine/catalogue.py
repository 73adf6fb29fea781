"""The process's cached copy of the stored catalogue, and how it keeps up.

Triggers (compiled into the matcher), event types, notification channels, secrets and
pipeline names live in the store. Each process keeps a copy for the hot path, built from a
catalogue version: every write that changes one of them appends to the catalogue log in its
own transaction. ``refresh`` reads the log after the version this copy was built from and
reloads only what it names; ``watch`` refreshes on a PostgreSQL NOTIFY at once and, as the
fallback, after at most ``catalogue_poll_seconds``. A process that wrote a change refreshes
before it answers, so it reads its own writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from bud.actions.registry import ActionRegistry
from bud.crypto import box_for
from bud.engine.matcher import Matcher
from bud.errors import NotFoundError
from bud.events import BUILTIN_EVENT_TYPES, EventType
from bud.pipelines import PipelineDef, parse_definition
from bud.redact import REDACTOR, credentials
from bud.settings import Settings
from bud.store import Repository, Session
from bud.store.records import Change, ChangeKind, Row

log = logging.getLogger("bud.engine")

CHANNEL = "bud_catalogue"


def _event_type(row: Row) -> EventType:
    return EventType(row["name"], row["description"], row["schema"], False, row["example"])


class Catalogue:
    def __init__(self, repo: Repository, registry: ActionRegistry, settings: Settings) -> None:
        self.repo = repo
        self.registry = registry
        self.settings = settings
        self.version = 0
        self.matcher = Matcher()
        self.event_types: dict[str, EventType] = dict(BUILTIN_EVENT_TYPES)
        self.secrets: dict[str, str] = dict(settings.secrets)
        self.channels: dict[str, dict[str, Any]] = settings.channel_config()
        self.secret_values: list[str] = sorted(credentials(self.secrets, self.channels))
        self._names: dict[str, str | None] = {}
        self._definitions: dict[tuple[str, int], PipelineDef] = {}
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Build the whole copy from the store."""
        async with self._lock, self.repo.read() as session:
            version = await session.catalogue_version()
            self.matcher = Matcher()
            self.matcher.load(await session.all_triggers())
            self.event_types = dict(BUILTIN_EVENT_TYPES)
            for row in await session.list_event_types():
                self.event_types[row["name"]] = _event_type(row)
            await self._load_config(session)
            self._names.clear()
            self.version = version

    async def refresh(self) -> bool:
        """Catch up with the store; True when something changed."""
        async with self._lock, self.repo.read() as session:
            changes = await session.catalogue_changes(self.version)
            if not changes:
                return False
            await self._apply(session, changes)
            self.version = changes[-1].seq
        return True

    async def _apply(self, session: Session, changes: Iterable[Change]) -> None:
        kinds: dict[str, set[str]] = {}
        for change in changes:
            kinds.setdefault(change.kind, set()).add(change.key)
        trigger_ids = kinds.get(ChangeKind.TRIGGER, set())
        if trigger_ids:
            found = {row["id"]: row for row in await session.triggers_by_id(trigger_ids)}
            for trigger_id in trigger_ids:
                row = found.get(trigger_id)
                if row is None:
                    self.matcher.remove(trigger_id)
                else:
                    self.matcher.put(row)
        for name in kinds.get(ChangeKind.EVENT_TYPE, set()):
            found_type = await session.get_event_type(name)
            if found_type is not None:
                self.event_types[name] = _event_type(found_type)
        if ChangeKind.CONFIG in kinds:
            await self._load_config(session)
        for pipeline_id in kinds.get(ChangeKind.PIPELINE, set()):
            self._names.pop(pipeline_id, None)

    async def _load_config(self, session: Session) -> None:
        """Secrets and channel configs, decrypted (they are stored encrypted: bud.crypto), and
        registered with the log redactor so that no log line shows them."""
        box = box_for(self.settings)
        secrets = dict(self.settings.secrets)
        for r in await session.list_secrets():
            secrets[r["name"]] = box.decrypt(r["value"], what=f"secret {r['name']}")
        channels = self.settings.channel_config()
        for r in await session.list_channels():
            channels[r["name"]] = box.open_config(r["config"], what=f"channel {r['name']}")
        self.secrets, self.channels = secrets, channels
        self.secret_values = sorted(credentials(secrets, channels))
        REDACTOR.update_config(secrets, channels, source=self.redaction_source)

    @property
    def redaction_source(self) -> str:
        """The ``bud.redact.REDACTOR`` source this process's stored secrets are under."""
        return f"config:{id(self)}"

    async def load_config(self) -> None:
        """Re-read the secrets and channels (and register them with the redactor)."""
        async with self._lock, self.repo.read() as session:
            await self._load_config(session)

    async def watch(self, stopping: asyncio.Event) -> None:
        """Refresh on every wake-up from the store, and at least every poll interval."""
        poke = asyncio.Event()

        async def listen() -> None:
            async for _ in self.repo.wakeups(CHANNEL):
                poke.set()

        listener = asyncio.create_task(listen(), name="bud-catalogue-listen")
        try:
            while not stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(poke.wait(), self.settings.catalogue_poll_seconds)
                poke.clear()
                try:
                    await self.refresh()
                except Exception:
                    log.exception("catalogue refresh failed")
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    # -- pipelines: definitions by version never change; names do -----------------------
    async def definition(
        self, pipeline_id: str, version: int, session: Session | None = None
    ) -> PipelineDef:
        """A pipeline version, parsed against the actions registered now (cached)."""
        key = (pipeline_id, version)
        found = self._definitions.get(key)
        if found is None:
            if session is None:
                async with self.repo.read() as own:
                    row = await own.get_pipeline_version(pipeline_id, version)
            else:
                row = await session.get_pipeline_version(pipeline_id, version)
            if row is None:
                raise NotFoundError(f"pipeline {pipeline_id} version {version} not found")
            found = parse_definition(row["definition"], self.registry)
            self._definitions[key] = found
        return found

    def forget_definitions(self) -> None:
        """Parse pipeline versions again on next use (the registered actions changed)."""
        self._definitions.clear()

    async def pipeline_name(self, pipeline_id: str) -> str | None:
        if pipeline_id not in self._names:
            async with self.repo.read() as session:
                row = await session.get_pipeline(pipeline_id)
            self._names[pipeline_id] = row["name"] if row else None
        return self._names[pipeline_id]
