"""Request-scoped access to the server core."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from bud.services import Bud


def get_bud(request: Request) -> Bud:
    bud: Bud = request.app.state.bud
    return bud


BudDep = Annotated[Bud, Depends(get_bud)]
