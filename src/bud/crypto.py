"""Encryption at rest for secret values and channel credentials (Fernet: AES-128-CBC + HMAC).

The key comes from the ``secret_key`` setting (``BUD_SECRET_KEY``): one Fernet key, or several
separated by commas, the first encrypting and all decrypting (key rotation). Without one, a key
is generated on first start into ``<data_dir>/secret.key`` (file mode 0600) and used from then
on. Several processes sharing one PostgreSQL database must share the key: give them the same
``BUD_SECRET_KEY``.

Stored values carry a prefix (``enc:v1:``) so a value written before encryption existed is
recognised and read as it is; ``ConfigService.seal_stored`` encrypts such rows at start.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = ["KEY_FILE", "PREFIX", "SecretBox", "SecretKeyError", "box_for", "load_keys"]

PREFIX = "enc:v1:"
KEY_FILE = "secret.key"
SEALED = "encrypted"  # a channel config stored as {"encrypted": "enc:v1:..."}


class SecretKeyError(ValueError):
    """The secret key is unusable, or a stored value was encrypted under another key."""


class SecretBox:
    """Encrypt and decrypt short strings under one key (the first of ``keys``) or its elders."""

    def __init__(self, keys: bytes | str | list[bytes]) -> None:
        chosen = (
            keys if isinstance(keys, list) else [keys.encode() if isinstance(keys, str) else keys]
        )
        try:
            self._fernet = MultiFernet([Fernet(k) for k in chosen])
        except (ValueError, TypeError) as exc:
            raise SecretKeyError(
                "secret_key (BUD_SECRET_KEY) must be a Fernet key: 32 bytes in URL-safe base64, "
                '44 characters; make one with: python -c "from cryptography.fernet import '
                'Fernet; print(Fernet.generate_key().decode())"'
            ) from exc

    @staticmethod
    def is_sealed(stored: str) -> bool:
        return stored.startswith(PREFIX)

    def encrypt(self, value: str) -> str:
        return PREFIX + self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, stored: str, *, what: str = "a stored value") -> str:
        """The plain value; a value stored before encryption comes back as it is."""
        if not self.is_sealed(stored):
            return stored
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken as exc:
            raise SecretKeyError(
                f"{what} cannot be decrypted with this server's key: it was stored under "
                "another secret_key (BUD_SECRET_KEY; every process sharing a store needs the same)"
            ) from exc

    def seal_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """A channel config as stored: the whole config encrypted."""
        return {SEALED: self.encrypt(json.dumps(config, separators=(",", ":")))}

    def open_config(self, stored: Any, *, what: str = "a channel config") -> dict[str, Any]:
        if isinstance(stored, dict) and set(stored) == {SEALED} and isinstance(stored[SEALED], str):
            opened: dict[str, Any] = json.loads(self.decrypt(stored[SEALED], what=what))
            return opened
        return dict(stored or {})

    @staticmethod
    def config_is_sealed(stored: Any) -> bool:
        return isinstance(stored, dict) and set(stored) == {SEALED}


def load_keys(secret_key: str | None, data_dir: Path) -> list[bytes]:
    """The keys from the setting, else the data directory's key file (created when missing)."""
    if secret_key and secret_key.strip():
        return [k.strip().encode() for k in secret_key.split(",") if k.strip()]
    path = data_dir / KEY_FILE
    if path.exists():
        return [path.read_bytes().strip()]
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return [path.read_bytes().strip()]
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
    return [key]


@functools.lru_cache(maxsize=32)
def _box(secret_key: str | None, data_dir: str) -> SecretBox:
    return SecretBox(load_keys(secret_key, Path(data_dir)))


def box_for(settings: Any) -> SecretBox:
    """The SecretBox of a ``bud.settings.Settings`` (built once per key and data directory)."""
    return _box(settings.secret_key, str(Path(settings.data_dir).resolve()))
