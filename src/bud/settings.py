"""Server settings: defaults, then a config file, then ``BUD_*`` environment variables."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8010
    data_dir: Path = Path(".bud")
    database_url: str | None = None  # default: sqlite file under data_dir
    api_keys: tuple[str, ...] = ()
    slack_webhook_url: str | None = None
    webhook_url: str | None = None
    smtp_url: str | None = None  # smtp://user:pass@host:port, smtps://... for implicit TLS
    smtp_from: str = "bud@localhost"
    max_event_bytes: int = 256 * 1024
    max_request_bytes: int = 8 * 1024 * 1024
    max_batch_events: int = 5000
    workers: int = 16  # concurrent steps per worker process
    lease_seconds: float = 30.0
    poll_seconds: float = 1.0
    health_probe_seconds: float = 15.0
    max_chain_depth: int = 8
    breaker_max_fires: int = 600  # a trigger firing more often than this per window is tripped
    breaker_window_seconds: float = 60.0
    max_non_fired_decisions: int = 25  # filtered/disabled triggers explained per event
    secrets: dict[str, str] = field(default_factory=dict)
    demo: bool = False
    # Extra names the Host header may carry (beyond the bind host, localhost, 127.0.0.1, ::1).
    allowed_hosts: tuple[str, ...] = ()
    # Private, loopback and link-local destinations outbound requests may reach (CIDRs, hosts).
    outbound_allow: tuple[str, ...] = ()

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'bud.db').resolve()}"

    @property
    def is_loopback(self) -> bool:
        """Whether ``host`` is ``localhost`` or a loopback address (parsed, not prefix-matched)."""
        host = self.host.strip()
        if host.lower() == "localhost":
            return True
        try:
            return ipaddress.ip_address(host.removeprefix("[").removesuffix("]")).is_loopback
        except ValueError:
            return False

    def channel_config(self) -> dict[str, dict[str, Any]]:
        channels: dict[str, dict[str, Any]] = {}
        if self.slack_webhook_url:
            channels["slack"] = {"url": self.slack_webhook_url}
        if self.webhook_url:
            channels["webhook"] = {"url": self.webhook_url}
        if self.smtp_url:
            channels["email"] = {"smtp_url": self.smtp_url, "from": self.smtp_from}
        return channels

    @classmethod
    def load(
        cls,
        config_file: str | Path | None = None,
        env: dict[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        path = config_file or env.get("BUD_CONFIG")
        if path:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
            if not isinstance(loaded, dict):
                raise ValueError(f"config file {path} must hold a mapping")
            values.update(loaded)
        names = {f.name: f for f in fields(cls)}
        for name in names:
            key = f"BUD_{name.upper()}"
            if key in env and env[key] != "":
                values[name] = env[key]
        secrets = dict(values.get("secrets") or {})
        for key, value in env.items():
            if key.startswith("BUD_SECRET_"):
                secrets[key[len("BUD_SECRET_") :].lower()] = value
        values["secrets"] = secrets
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(
            cls(), **{k: _coerce(names[k].type, v) for k, v in values.items() if k in names}
        )


def _coerce(kind: Any, value: Any) -> Any:
    text = str(kind)
    if isinstance(value, str):
        if "tuple" in text:
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if text.startswith("int"):
            return int(value)
        if text.startswith("float"):
            return float(value)
        if text.startswith("bool"):
            return value.lower() in ("1", "true", "yes", "on")
        if text.startswith("Path"):
            return Path(value)
    if "tuple" in text and isinstance(value, list):
        return tuple(value)
    if text.startswith("Path") and not isinstance(value, Path):
        return Path(str(value))
    return value
