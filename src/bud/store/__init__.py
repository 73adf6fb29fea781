"""The store: a domain repository in front of the database (see ``repository``)."""

from __future__ import annotations

from typing import Any

from bud.store.repository import Repository, Session, StepKey


def open_repository(url: str, clock: Any = None) -> Repository:
    """A repository for a URL: ``sqlite:///path``, ``postgresql://...``, or ``memory://`` (the
    in-memory fake, for tests)."""
    if url == "memory://":
        from bud.store.memory import MemoryRepository

        return MemoryRepository(clock)
    if url.startswith("sqlite"):
        from bud.store.sqlite import SqliteRepository

        return SqliteRepository(url, clock)
    if url.startswith(("postgresql", "postgres")):
        from bud.store.postgres import PostgresRepository

        return PostgresRepository(url, clock)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://...")


__all__ = ["Repository", "Session", "StepKey", "open_repository"]
