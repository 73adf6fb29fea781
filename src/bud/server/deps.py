"""Request-scoped access to the server core."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from bud.services import Bud


async def get_bud(request: Request) -> Bud:
    # async on purpose: FastAPI runs a sync dependency in a worker thread, on every request
    bud: Bud = request.app.state.bud
    return bud


BudDep = Annotated[Bud, Depends(get_bud)]
