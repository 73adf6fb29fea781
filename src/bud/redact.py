"""Secret values never reach a log line, a record or an answer in any form we can recognise.

``forms(value)`` lists the ways a secret shows up when code passes it along: raw, URL-encoded
(``quote`` with and without ``/`` kept, ``quote_plus``), base64 (standard and URL-safe, with
and without padding), JSON-escaped, and the same for the value upper-cased, lower-cased and
reversed (what the ``upper``, ``lower`` and ``reverse`` template filters make of it).
``Masker`` replaces all of them with ``MASK`` in one regular-expression pass.

``Redactor`` is the registry of every value the process knows to be secret (settings, the
secrets table, channel credentials, API keys), updated by whoever loads them
(``update(values, source=...)``). ``install_logging()`` puts it in front of every log handler:
a log-record factory masks each record as it is made (so handlers added later are covered
too), and a filter on the handlers present (the root logger's, uvicorn's, httpx's) masks
records made any other way.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

__all__ = [
    "MASK",
    "REDACTOR",
    "Masker",
    "Redactor",
    "credentials",
    "forms",
    "install_logging",
    "url_parts",
]

MASK = "******"
MIN_LENGTH = 4  # shorter values would mask ordinary text ("on", "1")
LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpcore", "bud")


def _encodings(value: str) -> set[str]:
    raw = value.encode()
    std = base64.b64encode(raw).decode()
    url = base64.urlsafe_b64encode(raw).decode()
    return {
        value,
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        std,
        std.rstrip("="),
        url,
        url.rstrip("="),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        json.dumps(json.dumps(value)[1:-1])[1:-1],  # JSON inside JSON (a body echoed back)
        json.dumps(json.dumps(value, ensure_ascii=False)[1:-1], ensure_ascii=False)[1:-1],
    }


def forms(value: str) -> set[str]:
    """Every recognisable form of a secret value (empty for values too short to mask)."""
    if len(value) < MIN_LENGTH:
        return set()
    found: set[str] = set()
    for variant in (value, value.upper(), value.lower(), value[::-1]):
        found |= _encodings(variant)
    return {f for f in found if len(f) >= MIN_LENGTH}


def url_parts(url: str) -> set[str]:
    """The credential-bearing parts of a URL: the whole URL, its password, path and query.

    A Slack or webhook URL carries its token in the path, an SMTP URL its password.
    """
    found = {url}
    try:
        parts = urlsplit(url)
    except ValueError:
        return found
    if parts.password:
        found.add(parts.password)
    if parts.path.strip("/") and len(parts.path) >= 8:
        found.add(parts.path)
    if parts.query:
        found.add(parts.query)
    return found


def credentials(
    secrets: Mapping[str, Any], channels: Mapping[str, Mapping[str, Any]] | None = None
) -> set[str]:
    """Every value to mask: the secrets, and the credential parts of channel URLs."""
    values = {v for v in secrets.values() if isinstance(v, str)}
    for config in (channels or {}).values():
        for item in config.values():
            if isinstance(item, str) and "://" in item:
                values |= url_parts(item)
    return values


class Masker:
    """Replace every form of the given values with ``MASK``."""

    def __init__(self, values: Iterable[str]) -> None:
        every: set[str] = set()
        for value in values:
            if isinstance(value, str):
                every |= forms(value)
        ordered = sorted(every, key=len, reverse=True)  # longest first: no partial masking
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, value: str) -> str:
        if self._pattern is None:
            return value
        return self._pattern.sub(MASK, value)

    def value(self, value: Any) -> Any:
        """A JSON value with every string (keys included) masked."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.value(v) for v in value)
        return value


@functools.lru_cache(maxsize=256)
def masker(values: tuple[str, ...]) -> Masker:
    """A Masker for these values, built once (compiling the pattern costs more than using it)."""
    return Masker(values)


class Redactor:
    """The secret values of this process, by source, and the log masking built from them."""

    def __init__(self) -> None:
        self._sources: dict[str, frozenset[str]] = {}
        self._masker = Masker(())
        self._lock = threading.Lock()

    def update(self, values: Iterable[str], *, source: str = "store") -> None:
        """Replace the values known from ``source`` (another source's values stay)."""
        chosen = frozenset(v for v in values if isinstance(v, str) and len(v) >= MIN_LENGTH)
        with self._lock:
            if self._sources.get(source) == chosen:
                return
            self._sources[source] = chosen
            self._rebuild()

    def forget(self, source: str) -> None:
        with self._lock:
            if self._sources.pop(source, None) is not None:
                self._rebuild()

    def _rebuild(self) -> None:
        every: set[str] = set()
        for values in self._sources.values():
            every |= values
        self._masker = Masker(every)

    def update_config(
        self,
        secrets: Mapping[str, Any],
        channels: Mapping[str, Mapping[str, Any]],
        *,
        source: str,
    ) -> None:
        """Register secret values and the credentials of channel configs (their URLs)."""
        self.update(credentials(secrets, channels), source=source)

    @property
    def values(self) -> frozenset[str]:
        every: set[str] = set()
        for values in self._sources.values():
            every |= values
        return frozenset(every)

    def text(self, value: str) -> str:
        return self._masker.text(value)

    def record(self, record: logging.LogRecord) -> logging.LogRecord:
        """Mask a log record in place: its message, its arguments and its traceback.

        A record with nothing to mask is left as it is. Otherwise the arguments are masked one
        by one when that is enough (formatters that read ``record.args`` keep working), else
        the message is formatted and masked whole.
        """
        current = self._masker
        if not current or getattr(record, "_bud_redacted", None) is current:
            return record
        setattr(record, "_bud_redacted", current)  # noqa: B010 - not a LogRecord field
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = current.text(record.exc_text)
        if record.stack_info:
            record.stack_info = current.text(record.stack_info)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it for the handler to report
            return record
        masked = current.text(message)
        if masked == message:
            return record
        if isinstance(record.msg, str) and isinstance(record.args, tuple):
            args = tuple(a if isinstance(a, _PLAIN) else current.text(str(a)) for a in record.args)
            try:
                again = current.text(record.msg) % args
            except (TypeError, ValueError):
                again = None
            if again is not None and current.text(again) == again:
                record.msg, record.args = current.text(record.msg), args
                return record
        record.msg, record.args = masked, None
        return record


_PLAIN = (int, float, bool, type(None))


class RedactingFilter(logging.Filter):
    """A handler filter: masks the record, keeps it."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        self.redactor.record(record)
        return True


REDACTOR = Redactor()
_installed: dict[int, Callable[..., logging.LogRecord]] = {}


def install_logging(redactor: Redactor = REDACTOR) -> None:
    """Put ``redactor`` in front of every log handler (idempotent; call again after a logging
    reconfiguration, such as uvicorn's, to cover the handlers it added)."""
    if id(redactor) not in _installed:
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return redactor.record(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        _installed[id(redactor)] = factory
    for name in LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not any(
                isinstance(f, RedactingFilter) and f.redactor is redactor for f in handler.filters
            ):
                handler.addFilter(RedactingFilter(redactor))
