"""Persistence: the Store interface and its SQLite and PostgreSQL backends."""

from bud.store.base import Row, Store, Tx, open_store

__all__ = ["Row", "Store", "Tx", "open_store"]
