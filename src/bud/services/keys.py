"""API keys: created with a scope, stored as a SHA-256 hash, listed, revoked.

A key is 32 random bytes (``bud_`` + URL-safe base64), shown once when created; the store keeps
only its SHA-256 (a key has the entropy a password lacks, so one unsalted hash is enough) and
its first characters, to recognise it in a list. Scopes are ordered: ``read`` < ``write`` <
``admin``; a key may do what its scope and every lower one allows. Keys from the ``api_keys``
setting are ``admin`` keys.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets as _random
import time
from typing import Any

from bud.errors import NotFoundError, ValidationError
from bud.ids import new_id
from bud.services.common import iso_times
from bud.store import Repository
from bud.timeutil import now as _now

__all__ = ["KEY_PREFIX", "KeyService", "Scope", "hash_key"]

KEY_PREFIX = "bud_"
SHOWN_CHARS = 10  # "bud_" and six characters of the key
CACHE_SECONDS = 2.0  # how long a lookup is trusted; a revocation elsewhere counts within this


class Scope(enum.IntEnum):
    """What a key may do; a higher scope includes the lower ones."""

    READ = 1
    WRITE = 2
    ADMIN = 3

    @classmethod
    def parse(cls, value: Any, path: str = "scope") -> Scope:
        names = [s.label for s in cls]
        if not isinstance(value, str) or value.lower() not in names:
            raise ValidationError(
                f"{path}: scope must be one of {', '.join(names)}; got {value!r}",
                details={"path": path, "allowed": names},
            )
        return cls[value.upper()]

    @property
    def label(self) -> str:
        return self.name.lower()


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _public(row: dict[str, Any]) -> dict[str, Any]:
    shown = {k: row[k] for k in ("id", "name", "scope", "prefix", "created_at", "revoked_at")}
    shown["revoked"] = row["revoked_at"] is not None
    return iso_times(shown, "created_at", "revoked_at")


class KeyService:
    """Stored API keys, and the lookup every request goes through (cached briefly)."""

    def __init__(self, repo: Repository, settings_keys: tuple[str, ...] = ()) -> None:
        self.repo = repo
        self._settings_keys = [k.encode() for k in settings_keys]
        self._cache: dict[str, tuple[float, Scope | None]] = {}
        self._any: tuple[float, bool] | None = None

    async def create(self, scope: Any, name: Any = None) -> dict[str, Any]:
        """A new key; the answer is the only place the key itself is ever shown."""
        chosen = Scope.parse(scope)
        if name is not None and (not isinstance(name, str) or len(name) > 256):
            raise ValidationError(
                "name must be a string of at most 256 characters", details={"path": "name"}
            )
        key = KEY_PREFIX + _random.token_urlsafe(32)
        row = {
            "id": new_id("key"),
            "name": name,
            "scope": chosen.label,
            "hash": hash_key(key),
            "prefix": key[:SHOWN_CHARS],
            "created_at": _now(),
            "revoked_at": None,
        }
        async with self.repo.transaction() as session:
            await session.insert_api_key(row)
        self._forget()
        return {**_public(row), "key": key}

    async def list(self) -> dict[str, Any]:
        async with self.repo.read() as session:
            rows = await session.list_api_keys()
        return {"items": [_public(r) for r in rows], "next_cursor": None}

    async def revoke(self, key_id: str) -> dict[str, Any]:
        async with self.repo.transaction() as session:
            row = await session.get_api_key(key_id)
            if row is None:
                raise NotFoundError(f"API key {key_id} not found", details={"key_id": key_id})
            if row["revoked_at"] is None:
                now = _now()
                row["revoked_at"] = now
                await session.revoke_api_key(key_id, now)
        self._forget()
        return _public(row)

    # -- the per-request lookup ------------------------------------------------------------
    async def enabled(self) -> bool:
        """Whether requests need a key: keys in the settings, or an active stored key."""
        if self._settings_keys:
            return True
        now = time.monotonic()
        if self._any is None or self._any[0] < now:
            async with self.repo.read() as session:
                count = await session.count_active_api_keys()
            self._any = (now + CACHE_SECONDS, count > 0)
        return self._any[1]

    async def scope_of(self, token: str) -> Scope | None:
        """The scope of a presented key, or None when it is not a valid key."""
        raw = token.encode()
        if any(hmac.compare_digest(raw, k) for k in self._settings_keys):
            return Scope.ADMIN
        if not token.startswith(KEY_PREFIX):
            return None
        digest = hash_key(token)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] >= now:
            return cached[1]
        async with self.repo.read() as session:
            row = await session.api_key_by_hash(digest)
        # The hash was found by an index lookup; compare it again in constant time.
        valid = (
            row is not None
            and row["revoked_at"] is None
            and hmac.compare_digest(row["hash"], digest)
        )
        scope = Scope.parse(row["scope"]) if valid and row is not None else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + CACHE_SECONDS, scope)
        return scope

    def _forget(self) -> None:
        self._cache.clear()
        self._any = None
