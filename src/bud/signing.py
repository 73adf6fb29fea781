"""Signatures of inbound webhook deliveries (the server checks them, the SDK makes them)."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["sign"]


def sign(secret: str, body: bytes, timestamp: str | None = None) -> str:
    """The ``X-Hub-Signature-256`` value of a delivery: ``sha256=`` and the hex HMAC-SHA256
    of the raw body under the hook's secret (GitHub's form), or of ``<timestamp>.<body>`` when
    the delivery carries ``X-Bud-Timestamp``."""
    content = body if timestamp is None else timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), content, hashlib.sha256).hexdigest()
