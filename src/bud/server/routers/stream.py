"""Live updates as server-sent events: ``GET /v1/stream``.

Each open stream re-reads what it watches through the services' public methods every
``INTERVAL`` seconds and sends only what changed. Reading the database (rather than
listening to one process's engine) keeps a stream right when several ``bud`` processes
share one database. See docs/ui.md ("Live updates").

* ``?execution_id=X``: ``event: execution`` with ``{execution, attempts, now}`` whenever
  the execution, one of its steps or one of its attempts changed (the first message is
  the current state).
* ``?topic=executions`` (with the list's filters): ``event: executions`` with the rows of
  the first page that are new or changed.
* ``?topic=events`` (with the log's filters): ``event: events`` with new or changed rows.

A stream ends when the client goes away and when the server shuts down
(``close_streams``), so stopping uvicorn never waits on an open browser tab.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Query, Request
from starlette.responses import StreamingResponse

from bud.errors import BudError, ValidationError
from bud.server.deps import BudDep
from bud.timeutil import now, to_iso

router = APIRouter(tags=["stream"])
log = logging.getLogger("bud.server.stream")

INTERVAL = 0.3  # seconds between two reads of one stream
HEARTBEAT = 15.0  # seconds of silence before a comment line (keeps proxies from timing out)
LIST_LIMIT = 50
TOPICS = ("executions", "events")
Read = Callable[[], Awaitable[dict[str, Any]]]


class Streams:
    """The open streams of one app: ``close()`` ends all of them (on server shutdown)."""

    def __init__(self) -> None:
        self.closing = False

    def close(self) -> None:
        # A plain flag, read by every stream on its next tick: safe to set from a signal handler.
        self.closing = True


def streams_of(app: FastAPI) -> Streams:
    streams: Streams | None = getattr(app.state, "streams", None)
    if streams is None:
        streams = app.state.streams = Streams()
    return streams


def close_streams(app: FastAPI) -> None:
    """End every open stream of ``app`` within one tick."""
    streams_of(app).close()


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def _frame(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + _dumps(data) + b"\n\n"


async def _watch(
    streams: Streams, produce: Callable[[], Awaitable[list[bytes]]]
) -> AsyncIterator[bytes]:
    yield b"retry: 1000\n\n"
    quiet = 0.0
    while not streams.closing:
        try:
            frames = await produce()
        except BudError as exc:  # the execution was deleted, a filter is wrong: final
            yield _frame("error", exc.to_dict()["error"])
            return
        except Exception:  # a passing store error: end; the client reconnects
            log.exception("live stream read failed")
            return
        for frame in frames:
            yield frame
        quiet = 0.0 if frames else quiet + INTERVAL
        if quiet >= HEARTBEAT:
            quiet = 0.0
            yield b": ping\n\n"
        await asyncio.sleep(INTERVAL)


def _execution_producer(bud: Any, execution_id: str) -> Callable[[], Awaitable[list[bytes]]]:
    last = b""

    async def produce() -> list[bytes]:
        nonlocal last
        execution = await bud.executions.get(execution_id)
        attempts = (await bud.executions.attempts(execution_id))["items"]
        key = _dumps([execution, attempts])
        if key == last:
            return []
        last = key
        return [
            _frame(
                "execution", {"execution": execution, "attempts": attempts, "now": to_iso(now())}
            )
        ]

    return produce


def _list_producer(topic: str, read: Read, key: str) -> Callable[[], Awaitable[list[bytes]]]:
    seen: dict[Any, bytes] = {}

    async def produce() -> list[bytes]:
        rows = (await read())["items"]
        changed = []
        for row in rows:
            raw = _dumps(row)
            if seen.get(row[key]) != raw:
                seen[row[key]] = raw
                changed.append(row)
        if not changed:
            return []
        return [_frame(topic, {"items": changed, "now": to_iso(now())})]

    return produce


@router.get(
    "/v1/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-sent events: one `data:` line of JSON per change.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def stream(
    request: Request,
    bud: BudDep,
    execution_id: str | None = None,
    topic: str | None = Query(default=None, description="executions or events"),
    pipeline_id: str | None = None,
    trigger_id: str | None = None,
    event_id: str | None = None,
    status: str | None = None,
    since: str | None = None,
    event_type: str | None = None,
    source: str | None = None,
    test: bool | None = None,
    data_path: str | None = None,
    data_value: str | None = None,
    started_nothing: bool | None = None,
    filtered_by: str | None = None,
) -> StreamingResponse:
    """Server-sent events for an execution page, the executions list or the event log."""
    if execution_id:
        await bud.executions.get(execution_id)  # a 404 before the stream starts
        produce = _execution_producer(bud, execution_id)
    elif topic == "executions":

        async def read_executions() -> dict[str, Any]:
            result: dict[str, Any] = await bud.executions.list(
                pipeline_id=pipeline_id,
                trigger_id=trigger_id,
                event_id=event_id,
                status=status,
                since=since,
                limit=LIST_LIMIT,
            )
            return result

        await read_executions()  # bad filters answer 422 here, not inside the stream
        produce = _list_producer("executions", read_executions, "id")
    elif topic == "events":

        async def read_events() -> dict[str, Any]:
            result: dict[str, Any] = await bud.events.list(
                event_type=event_type,
                source=source,
                since=since,
                test=test,
                limit=LIST_LIMIT,
                data_path=data_path,
                data_value=data_value,
                started_nothing=started_nothing,
                filtered_by=filtered_by,
            )
            return result

        await read_events()
        produce = _list_producer("events", read_events, "event_id")
    else:
        raise ValidationError(
            "stream: give execution_id, or topic=executions or topic=events",
            details={"path": "topic" if topic else "execution_id", "known": list(TOPICS)},
        )
    return StreamingResponse(
        _watch(streams_of(request.app), produce),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
