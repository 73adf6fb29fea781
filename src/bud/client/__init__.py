"""The Python SDK: ``BudClient`` (sync) and ``AsyncBudClient`` (asyncio) over the REST API.

Depends on nothing server-side: only httpx, the shared schemas and the shared errors.
"""

from __future__ import annotations

from bud.client._async import AsyncBudClient, AsyncPager
from bud.client._base import DEFAULT_URL, NOT_GIVEN, NotGiven, WaitTimeout
from bud.client._sync import BudClient, Pager

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
