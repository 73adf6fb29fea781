"""The Python SDK: ``BudClient`` (sync) and ``AsyncBudClient`` (asyncio) over the REST API.

Depends on nothing server-side: only httpx, the shared schemas and the shared errors.
``_async.py`` is the one source of both clients; ``_sync.py`` is generated from it by
``scripts/unasync.py`` (see docs/sdk.md).
"""

from __future__ import annotations

from bud.client._async import AsyncBudClient
from bud.client._base import DEFAULT_URL, NOT_GIVEN, NotGiven, WaitTimeout
from bud.client._io import AsyncPager, Pager
from bud.client._sync import BudClient

__all__ = [
    "DEFAULT_URL",
    "NOT_GIVEN",
    "AsyncBudClient",
    "AsyncPager",
    "BudClient",
    "NotGiven",
    "Pager",
    "WaitTimeout",
]
