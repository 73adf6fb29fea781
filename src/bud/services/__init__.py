"""The server-side core: one object wiring store, engine, platform and the services."""

from __future__ import annotations

import fcntl
import logging
import os
from typing import IO, Any

from bud.actions.registry import ActionRegistry, default_registry
from bud.clock import Clock, SystemClock
from bud.engine.core import Engine
from bud.platform.builtin import BuiltinPlatform
from bud.services.config import ConfigService
from bud.services.events import EventService
from bud.services.executions import ExecutionService
from bud.services.hooks import HookService
from bud.services.insights import InsightService
from bud.services.pipelines import PipelineService
from bud.services.triggers import TriggerService
from bud.settings import Settings
from bud.store import Repository, open_repository

log = logging.getLogger("bud")


class DataDirLocked(RuntimeError):
    pass


class Bud:
    """Everything one ``bud serve`` process runs."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: ActionRegistry | None = None,
        repo: Repository | None = None,
        clock: Clock | None = None,
        run_workers: bool | None = None,
        kind: str = "serve",
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.repo = repo or open_repository(settings.effective_database_url, self.clock)
        self.registry = registry or default_registry()
        self.engine = Engine(
            self.repo,
            self.registry,
            settings,
            platform=lambda ingestor: BuiltinPlatform(self.repo, ingestor, self.clock, settings),
            clock=self.clock,
            run_workers=settings.run_workers if run_workers is None else run_workers,
            kind=kind,
        )
        assert isinstance(self.engine.platform, BuiltinPlatform)
        self.platform = self.engine.platform
        self.pipelines = PipelineService(self.engine)
        self.triggers = TriggerService(self.engine)
        self.events = EventService(self.engine)
        self.hooks = HookService(self.engine, self.events)
        self.executions = ExecutionService(self.engine)
        self.config = ConfigService(self.engine)
        self.insights = InsightService(self.engine)
        self._lock: IO[Any] | None = None
        self.nats: Any = None  # bud.nats.NatsBridge when nats_url is set

    @property
    def embedded(self) -> bool:
        return self.repo.dialect == "sqlite"

    def _lock_data_dir(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.settings.data_dir / "bud.lock", "a+")  # noqa: SIM115 - held while running
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.close()
            raise DataDirLocked(
                f"{self.settings.data_dir} is in use by another bud process; "
                "stop it or choose another --data-dir"
            ) from exc
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock = handle

    async def start(self) -> None:
        if self.embedded and self.settings.database_url is None:
            self._lock_data_dir()
        await self.repo.open()
        await self.engine.start()
        if self.engine.run_workers:
            self.platform.start_probing(self.settings.health_probe_seconds)
        if self.settings.nats_url:
            from bud.nats import NatsBridge

            self.nats = NatsBridge(
                self.settings,
                self.engine.ingestor,
                self.engine.signals,
                self.repo,
                consume=self.engine.kind == "serve",
            )
            await self.nats.start()

    async def stop(self, grace: float = 5.0) -> None:
        if self.nats is not None:
            await self.nats.stop()
        await self.platform.stop()
        await self.engine.stop(grace)
        await self.repo.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None
