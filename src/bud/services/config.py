"""Notification channels and secrets, managed through the API on top of the settings."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bud.crypto import SecretBox, box_for
from bud.engine.core import Engine
from bud.errors import NotFoundError, ValidationError
from bud.services.common import iso_times
from bud.templates import MASK

CHANNELS = {"slack": ("url",), "webhook": ("url",), "email": ("smtp_url", "from")}
SECRET_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,127}$")


def mask_url(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", f":{MASK}@")
    path = parts.path
    if parts.hostname and parts.hostname.endswith("hooks.slack.com") and path.count("/") >= 3:
        path = path.rsplit("/", 1)[0] + "/" + MASK
    elif len(path) >= 8:  # a webhook's path carries its token (bud.redact)
        path = "/" + MASK
    return urlunsplit((parts.scheme, netloc, path, parts.query and MASK, parts.fragment))


def masked_config(config: dict[str, Any]) -> dict[str, Any]:
    return {k: mask_url(v) if isinstance(v, str) and "://" in v else v for k, v in config.items()}


def redaction_source(engine: Engine) -> str:
    """The ``bud.redact.REDACTOR`` source under which an engine's stored secrets are
    registered (the catalogue registers them each time it loads them)."""
    return engine.catalogue.redaction_source


class ConfigService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.repo = engine.repo

    # -- encryption at rest ----------------------------------------------------------------
    @property
    def box(self) -> SecretBox:
        return box_for(self.engine.settings)

    async def seal_stored(self) -> int:
        """Encrypt rows stored before encryption at rest existed; return how many."""
        sealed = 0
        box = self.box
        now = self.engine.clock.now()
        async with self.repo.transaction() as session:
            for row in await session.list_secrets():
                if not box.is_sealed(row["value"]):
                    await session.put_secret(row["name"], box.encrypt(row["value"]), now)
                    sealed += 1
            for row in await session.list_channels():
                if not box.config_is_sealed(row["config"]):
                    await session.put_channel(row["name"], box.seal_config(row["config"]), now)
                    sealed += 1
        if sealed:
            await self.engine.changed()
        return sealed

    async def refresh_redactions(self) -> None:
        """Register every secret value and channel credential with the log redactor now."""
        await self.engine.catalogue.load_config()

    async def channels(self) -> dict[str, Any]:
        items = {
            name: {"name": name, "config": masked_config(cfg), "source": "settings"}
            for name, cfg in self.engine.settings.channel_config().items()
        }
        async with self.repo.read() as session:
            for row in await session.list_channels():
                items[row["name"]] = {
                    "name": row["name"],
                    "config": masked_config(self.box.open_config(row["config"])),
                    "source": "api",
                }
        return {"items": [items[k] for k in sorted(items)]}

    async def set_channel(self, name: str, config: Any) -> dict[str, Any]:
        if name not in CHANNELS:
            raise ValidationError(
                f"unknown channel {name!r}; channels are: {', '.join(CHANNELS)}",
                details={"path": "name"},
            )
        if not isinstance(config, dict):
            raise ValidationError("body must be a JSON object", details={"path": "body"})
        required = CHANNELS[name][:1]
        for key in required:
            value = config.get(key)
            if not isinstance(value, str) or "://" not in value:
                raise ValidationError(
                    f"{key}: channel {name} needs a {key} such as "
                    f"{'smtp://127.0.0.1:25' if name == 'email' else 'https://...'}",
                    details={"path": key},
                )
        unknown = set(config) - set(CHANNELS[name])
        if unknown:
            raise ValidationError(
                f"{sorted(unknown)[0]}: unknown field for channel {name}; allowed: "
                f"{', '.join(CHANNELS[name])}",
                details={"path": sorted(unknown)[0]},
            )
        async with self.repo.transaction() as session:
            await session.put_channel(name, self.box.seal_config(config), self.engine.clock.now())
        await self.engine.changed()
        return {"name": name, "config": masked_config(config), "source": "api"}

    async def delete_channel(self, name: str) -> None:
        async with self.repo.transaction() as session:
            if not await session.delete_channel(name):
                raise NotFoundError(f"channel {name} is not configured through the API")
        await self.engine.changed()

    async def secrets(self) -> dict[str, Any]:
        names = {n: {"name": n, "updated_at": None} for n in self.engine.settings.secrets}
        async with self.repo.read() as session:
            for row in await session.list_secrets():
                names[row["name"]] = iso_times(
                    {"name": row["name"], "updated_at": row["updated_at"]}, "updated_at"
                )
        return {"items": [names[k] for k in sorted(names)]}

    async def set_secret(self, name: str, value: Any) -> dict[str, Any]:
        if not SECRET_NAME_RE.match(name):
            raise ValidationError(
                "secret names are lowercase letters, digits and _", details={"path": "name"}
            )
        if not isinstance(value, str) or not value:
            raise ValidationError("value must be a non-empty string", details={"path": "value"})
        now = self.engine.clock.now()
        async with self.repo.transaction() as session:
            await session.put_secret(name, self.box.encrypt(value), now)
        await self.engine.changed()
        return iso_times({"name": name, "updated_at": now}, "updated_at")

    async def delete_secret(self, name: str) -> None:
        async with self.repo.transaction() as session:
            if not await session.delete_secret(name):
                raise NotFoundError(f"secret {name} not found")
        await self.engine.changed()
