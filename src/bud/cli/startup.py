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


class _FailedStart(logging.Filter):
    """Drops a startup traceback from the log and keeps its last line for the error."""

    def __init__(self) -> None:
        super().__init__()
        self.message: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if text.startswith("Traceback (most recent call last)"):
            last = text.rstrip().splitlines()[-1].strip()
            ours = _OURS.match(last)  # our own errors read well without their class
            self.message = ours.group("message") if ours else last
            return False
        return not (self.message is not None and text.startswith("Application startup failed"))


@contextmanager
def startup_failures(debug: bool) -> Iterator[None]:
    """Turn a server that exits at start into ``error: <why>`` and exit code 1.

    With ``debug`` the traceback stays in the log.
    """
    logger = logging.getLogger(_LOGGER)
    failed = _FailedStart()
    if not debug:
        logger.addFilter(failed)
    try:
        yield
    except SystemExit as exc:
        if exc.code in (0, None):
            raise
        reason = failed.message or f"the server exited with code {exc.code}"
        hint = "" if debug else " (bud --debug serve shows the traceback)"
        fail(f"the server did not start: {reason}{hint}")
    finally:
        logger.removeFilter(failed)
