"""Alembic revisions of the store's schema (docs/operations.md, "Schema migrations")."""
