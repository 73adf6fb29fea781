"""Notification channels and secrets, managed through the API on top of the settings."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bud.crypto import SecretBox, box_for  # helper:secrets
from bud.engine.core import Engine
from bud.errors import NotFoundError, ValidationError
from bud.redact import REDACTOR  # helper:secrets
from bud.services.common import iso_times
from bud.store import schema as t
from bud.templates import MASK
from bud.timeutil import now as _now

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
    elif len(path) >= 8:  # helper:secrets: a webhook's path carries its token (bud.redact)
        path = "/" + MASK
    return urlunsplit((parts.scheme, netloc, path, parts.query and MASK, parts.fragment))


def masked_config(config: dict[str, Any]) -> dict[str, Any]:
    return {k: mask_url(v) if isinstance(v, str) and "://" in v else v for k, v in config.items()}


def redaction_source(engine: Engine) -> str:  # helper:secrets
    """The ``bud.redact.REDACTOR`` source under which an engine's secrets are registered."""
    return f"config:{id(engine)}"


class ConfigService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = engine.store

    # helper:secrets: encryption at rest and log redaction ---------------------------------
    @property
    def box(self) -> SecretBox:
        return box_for(self.engine.settings)

    async def seal_stored(self) -> int:
        """Encrypt rows stored before encryption at rest existed; return how many."""
        sealed = 0
        box = self.box
        async with self.store.transaction() as tx:
            for row in await tx.list(t.secrets, order="name"):
                if not box.is_sealed(row["value"]):
                    await tx.update(
                        t.secrets,
                        {"value": box.encrypt(row["value"])},
                        t.secrets.c.name == row["name"],
                    )
                    sealed += 1
            for row in await tx.list(t.channels, order="name"):
                if not box.config_is_sealed(row["config"]):
                    await tx.update(
                        t.channels,
                        {"config": box.seal_config(row["config"])},
                        t.channels.c.name == row["name"],
                    )
                    sealed += 1
        return sealed

    async def refresh_redactions(self) -> None:
        """Tell the log redactor every secret value and channel credential there is now."""
        settings = self.engine.settings
        secrets: dict[str, str] = dict(settings.secrets)
        channels = settings.channel_config()
        async with self.store.read() as tx:
            for row in await tx.list(t.secrets, order="name"):
                secrets[row["name"]] = self.box.decrypt(row["value"], what=f"secret {row['name']}")
            for row in await tx.list(t.channels, order="name"):
                channels[row["name"]] = self.box.open_config(
                    row["config"], what=f"channel {row['name']}"
                )
        REDACTOR.update_config(secrets, channels, source=redaction_source(self.engine))

    async def _changed(self) -> None:
        self.engine.invalidate_config()
        await self.refresh_redactions()

    # ---------------------------------------------------------------------------------------

    async def channels(self) -> dict[str, Any]:
        items = {
            name: {"name": name, "config": masked_config(cfg), "source": "settings"}
            for name, cfg in self.engine.settings.channel_config().items()
        }
        async with self.store.read() as tx:
            for row in await tx.list(t.channels, order="name", descending=False):
                items[row["name"]] = {
                    "name": row["name"],
                    "config": masked_config(self.box.open_config(row["config"])),  # helper:secrets
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
        async with self.store.transaction() as tx:
            await tx.delete(t.channels, t.channels.c.name == name)
            await tx.insert(
                t.channels,
                # helper:secrets: stored encrypted
                {"name": name, "config": self.box.seal_config(config), "updated_at": _now()},
            )
        await self._changed()  # helper:secrets
        return {"name": name, "config": masked_config(config), "source": "api"}

    async def delete_channel(self, name: str) -> None:
        async with self.store.transaction() as tx:
            if not await tx.delete(t.channels, t.channels.c.name == name):
                raise NotFoundError(f"channel {name} is not configured through the API")
        await self._changed()  # helper:secrets

    async def secrets(self) -> dict[str, Any]:
        names = {n: {"name": n, "updated_at": None} for n in self.engine.settings.secrets}
        async with self.store.read() as tx:
            for row in await tx.list(t.secrets, order="name", descending=False):
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
        now = _now()
        async with self.store.transaction() as tx:
            await tx.delete(t.secrets, t.secrets.c.name == name)
            sealed = self.box.encrypt(value)  # helper:secrets: stored encrypted
            await tx.insert(t.secrets, {"name": name, "value": sealed, "updated_at": now})
        await self._changed()  # helper:secrets
        return iso_times({"name": name, "updated_at": now}, "updated_at")

    async def delete_secret(self, name: str) -> None:
        async with self.store.transaction() as tx:
            if not await tx.delete(t.secrets, t.secrets.c.name == name):
                raise NotFoundError(f"secret {name} not found")
        await self._changed()  # helper:secrets
