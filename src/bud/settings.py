"""Server settings: defaults, then a config file, then ``BUD_*`` environment variables.

``Settings`` is a pydantic-settings model: every value is validated when the server starts,
an unknown key in the config file is refused (``api_key:`` for ``api_keys:``), and a bad
value is refused with the name it came in under (``BUD_WORKERS: 'abc' is not an integer``).
``Settings(...)`` takes only what it is given; ``Settings.load`` layers the file, the
environment and command-line overrides. Copies are made with ``model_copy(update=...)``.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}

LogFormat = Literal["text", "json"]
LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]


class SettingsError(ValueError):
    """A setting is unknown or has a value it cannot take; the message names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BUD_", extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8010, ge=0, le=65535)
    data_dir: Path = Path(".bud")
    database_url: str | None = None  # default: sqlite file under data_dir
    api_keys: tuple[str, ...] = ()
    metrics_token: str | None = None  # a token for /metrics only (else any API key)
    secret_key: str | None = None  # Fernet key(s) for secrets at rest; else <data_dir>/secret.key
    slack_webhook_url: str | None = None
    webhook_url: str | None = None
    smtp_url: str | None = None  # smtp://user:pass@host:port, smtps://... for implicit TLS
    smtp_from: str = "bud@localhost"
    max_event_bytes: int = Field(256 * 1024, ge=1)
    max_request_bytes: int = Field(8 * 1024 * 1024, ge=1)
    max_batch_events: int = Field(5000, ge=1)
    # Concurrent steps per process; unset: 16 on SQLite, 64 on PostgreSQL (step_slots).
    workers: int | None = Field(None, ge=0)
    lease_seconds: float = Field(30.0, gt=0)
    poll_seconds: float = Field(1.0, gt=0)
    catalogue_poll_seconds: float = Field(0.5, gt=0)  # the bound on another process's change
    heartbeat_seconds: float = Field(5.0, gt=0)  # processes record that they are alive
    durable_delay_seconds: float = Field(5.0, gt=0)  # delays this long hold no worker slot
    # The built-in platform records new deployments as pending (not running) until they are
    # updated to running, which emits deployment.ready: what deployment_create's wait waits for.
    platform_deployments_pending: bool = False
    run_workers: bool = True  # False: an API node that runs no steps (bud serve --no-workers)
    nats_url: str | None = None  # NATS JetStream: platform events in, lifecycle events out
    nats_subject: str = "platform.events.>"
    nats_stream: str = "BUD_EVENTS"  # created for nats_subject when no stream holds it
    nats_consumer: str = "bud-ingest"  # the durable consumer all API nodes share
    nats_dead_letter_subject: str = "bud.dead_letter"
    nats_egress_subject: str | None = None  # execution.<status> published to <subject>.<status>
    health_probe_seconds: float = Field(15.0, gt=0)
    max_chain_depth: int = Field(8, ge=0)
    breaker_max_fires: int = Field(600, ge=1)  # a trigger firing more often per window trips
    breaker_window_seconds: float = Field(60.0, gt=0)
    max_non_fired_decisions: int = Field(25, ge=0)  # filtered/disabled triggers per event
    secrets: dict[str, str] = Field(default_factory=dict)
    template_cpu_seconds: float = Field(1.0, gt=0)  # CPU time of one render (docs/templates.md)
    template_max_output_chars: int = Field(1_000_000, ge=1)  # characters one render may produce
    template_max_memory_bytes: int = Field(64 * 1024 * 1024, ge=1)  # bytes one render may use
    demo: bool = False
    log_level: LogLevel = "info"
    log_format: LogFormat = "text"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what the caller gives: ``load`` layers the file and the environment itself,
        # so that it knows where each value came from when one is refused.
        return (init_settings,)

    @field_validator("api_keys", "allowed_hosts", "outbound_allow", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_keys(self) -> Settings:
        for i, key in enumerate(self.api_keys):
            if not isinstance(key, str) or not key.strip() or key != key.strip():
                raise ValueError(
                    f"api_keys[{i}]: an API key must be a non-empty string without surrounding "
                    "whitespace (an empty key would let an empty X-API-Key header in)"
                )
        if self.metrics_token is not None and not self.metrics_token.strip():
            raise ValueError("metrics_token: must not be empty or whitespace")
        return self

    # Extra names the Host header may carry (beyond the bind host, localhost, 127.0.0.1, ::1).
    allowed_hosts: tuple[str, ...] = ()
    # Private, loopback and link-local destinations outbound requests may reach (CIDRs, hosts).
    outbound_allow: tuple[str, ...] = ()

    @property
    def step_slots(self) -> int:
        """Steps one process runs at once: ``workers`` if set. Otherwise 16 on SQLite, where
        every step's record waits for the one writer and more slots only queue for it, and
        64 on PostgreSQL, where transactions run side by side and a slot waiting for a round
        trip costs an asyncio task, not a thread or a connection (docs/deployment.md)."""
        if self.workers is not None:
            return max(1, self.workers)
        return 64 if self.effective_database_url.startswith("postgres") else 16

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
        """Defaults, then the config file (or ``BUD_CONFIG``), then ``BUD_*``, then overrides.

        Raises SettingsError naming the setting (``BUD_WORKERS``, ``config.yaml: workers``,
        ``--workers``) for an unknown key or a value it cannot take.
        """
        env = dict(os.environ if env is None else env)
        names = set(cls.model_fields)
        values: dict[str, Any] = {}
        origin: dict[str, str] = {}
        path = config_file or env.get("BUD_CONFIG")
        if path:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
            if not isinstance(loaded, dict):
                raise SettingsError(f"config file {path} must hold a mapping of settings")
            for key, value in loaded.items():
                if key not in names:
                    raise SettingsError(f"config file {path}: {_unknown(str(key), names)}")
                values[key] = value
                origin[key] = f"{path}: {key}"
        for name in names:
            key = f"BUD_{name.upper()}"
            if env.get(key):
                values[name] = env[key]
                origin[name] = key
        raw_keys = values.get("api_keys")
        if isinstance(raw_keys, str) and any(not k.strip() for k in raw_keys.split(",")):
            raise SettingsError(
                "api_keys (BUD_API_KEYS): an empty key in the comma-separated list; "
                "every key must be a non-empty string"
            )
        secrets = dict(values.get("secrets") or {})
        for key, value in env.items():
            if key.startswith("BUD_SECRET_"):
                secrets[key[len("BUD_SECRET_") :].lower()] = value
        values["secrets"] = secrets
        for name, value in overrides.items():
            if name not in names:
                raise TypeError(f"Settings.load() got an unknown setting {name!r}")
            if value is not None:
                values[name] = value
                origin[name] = f"--{name.replace('_', '-')}"
        try:
            return cls(**values)
        except pydantic.ValidationError as exc:
            raise SettingsError(_explain(exc, origin)) from None


def _unknown(key: str, names: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(names), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown setting {key!r}{hint}; the settings are listed in docs/operations.md"


_PHRASES = {
    "int_parsing": "is not an integer",
    "int_from_float": "is not an integer",
    "int_type": "is not an integer",
    "float_parsing": "is not a number",
    "float_type": "is not a number",
    "bool_parsing": "is not a boolean (true or false)",
    "bool_type": "is not a boolean (true or false)",
}


def _explain(exc: pydantic.ValidationError, origin: dict[str, str]) -> str:
    lines = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "settings"
        where = origin.get(name, name)
        value = error.get("input")
        phrase = _PHRASES.get(error["type"])
        if phrase is None:
            phrase = error["msg"][0].lower() + error["msg"][1:]
            lines.append(f"{where}: {value!r}: {phrase}")
        else:
            lines.append(f"{where}: {value!r} {phrase}")
    return "; ".join(lines)
