"""Identifiers: a prefix and a time-ordered, random suffix (``trig_01jd3...``).

Time-ordered ids sort by creation, so they double as pagination cursors.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lowercase
_lock = threading.Lock()
_last = [0, 0]  # last millisecond, counter within it


def _encode(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, rem = divmod(number, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """A new id such as ``exe_01jd3k...``; ids made later in this process sort later."""
    ms = int(time.time() * 1000)
    with _lock:
        if ms <= _last[0]:
            ms = _last[0]
            _last[1] += 1
        else:
            _last[0], _last[1] = ms, int.from_bytes(os.urandom(4), "big") >> 8
        counter = _last[1]
    rand = int.from_bytes(os.urandom(5), "big")
    return f"{prefix}_{_encode(ms, 10)}{_encode(counter, 6)}{_encode(rand, 8)}"
