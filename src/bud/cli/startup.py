"""A server that fails to start says why in one line, not with the traceback uvicorn logs."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

from bud.cli.common import fail

__all__ = ["startup_failures"]

# uvicorn logs the app's failed start here: the traceback, then "Application startup failed".
_LOGGER = "uvicorn.error"
_OURS = re.compile(r"^bud(?:\.\w+)*\.\w+: (?P<message>.+)$")


class _Start(logging.Filter):
    """Watches uvicorn's log until the app has started.

    Until then a traceback (the app's lifespan failing) is dropped, unless ``debug``, and its
    last line kept as the reason; any other error is kept as the reason too (a port in use).
    """

    def __init__(self, debug: bool) -> None:
        super().__init__()
        self.debug = debug
        self.started = False
        self.reason: str | None = None
        self.dropped = False

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if text.startswith("Application startup complete"):
            self.started = True
        elif self.started or record.levelno < logging.ERROR:
            pass
        elif text.startswith("Traceback (most recent call last)"):
            last = text.rstrip().splitlines()[-1].strip()
            ours = _OURS.match(last)  # our own errors read well without their class
            self.reason = ours.group("message") if ours else last
            self.dropped = not self.debug
            return self.debug
        elif text.startswith("Application startup failed"):
            return self.debug or self.reason is None
        if record.levelno >= logging.ERROR:
            self.reason = text
        return True


@contextmanager
def startup_failures(debug: bool) -> Iterator[None]:
    """Turn a server that exits with an error into ``error: <why>`` and exit code 1.

    Without ``debug`` a traceback logged while the app starts is left out of the log.
    """
    logger = logging.getLogger(_LOGGER)
    start = _Start(debug)
    logger.addFilter(start)
    try:
        yield
    except SystemExit as exc:
        if exc.code in (0, None):
            raise
        reason = start.reason or f"the server exited with code {exc.code}"
        hint = " (bud --debug serve shows the traceback)" if start.dropped else ""
        fail(f"the server did not start: {reason}{hint}")
    finally:
        logger.removeFilter(start)
