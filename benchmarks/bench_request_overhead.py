"""What the request-id and access-log middleware adds to one HTTP request.

Calls ``bud.server.logs.RequestContext`` around a bare ASGI app (no socket, no client) and
reports the extra microseconds per request with the access line skipped (log level warning)
and written (info, text and json formats, to /dev/null). Run:

    .venv/bin/python benchmarks/bench_request_overhead.py
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from bud.server.logs import RequestContext, configure

SCOPE: dict[str, Any] = {
    "type": "http",
    "method": "POST",
    "path": "/v1/events",
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"60")],
}


async def bare(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 202, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _send(message: Any) -> None:
    return None


async def _receive() -> Any:
    return {"type": "http.request", "body": b"", "more_body": False}


async def per_request_us(app: Any, n: int = 50_000) -> float:
    best = float("inf")
    for _ in range(7):
        started = time.perf_counter()
        for _ in range(n):
            await app(dict(SCOPE), _receive, _send)
        best = min(best, (time.perf_counter() - started) / n)
    return best * 1e6


async def main(sink: Any) -> None:
    base = await per_request_us(bare)
    print(f"bare ASGI app: {base:.1f} µs per request")
    for level, fmt in (("warning", "text"), ("info", "text"), ("info", "json")):
        configure(level, fmt)
        handler = logging.getLogger().handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(sink)
        wrapped = await per_request_us(RequestContext(bare))
        print(f"RequestContext, log level {level}, {fmt}: +{wrapped - base:.1f} µs per request")


if __name__ == "__main__":
    with open(os.devnull, "w") as devnull:
        asyncio.run(main(devnull))
