"""Alembic's environment: runs revisions on the connection that ``bud.store.migrations`` hands over.

Bud runs its migrations itself at start (``migrate``); this file is what Alembic loads to do so.
The connection comes in ``config.attributes["connection"]``, already inside a transaction.
"""

from __future__ import annotations

from alembic import context

from bud.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite alters a table by copying it
    transaction_per_migration=False,
)
context.run_migrations()
