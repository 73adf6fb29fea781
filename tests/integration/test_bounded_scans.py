"""Backtests and other scans run a few at a time, off the event loop: /healthz keeps answering."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bud.server.app import create_app
from bud.services import insights
from bud.settings import Settings

EVENTS = 3000


@pytest.fixture
async def http(settings: Settings, store_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update=dict(database_url=store_url)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


async def publish(http: httpx.AsyncClient, count: int) -> None:
    events = [
        {"event_type": "model.added", "data": {"model_id": f"m{i}", "n": i, "model_source": "s"}}
        for i in range(count)
    ]
    answer = await http.post("/v1/events/batch", json={"events": events})
    assert answer.status_code == 202, answer.text


async def test_healthz_answers_while_backtests_run(http: httpx.AsyncClient) -> None:
    await publish(http, EVENTS)
    backtest = {"event_type": "model.added", "filter": {"n": {"$gte": 2000}}, "limit": EVENTS}
    tasks = [
        asyncio.create_task(http.post("/v1/event-triggers/backtest", json=backtest))
        for _ in range(40)
    ]
    answered_meanwhile = 0
    while not all(task.done() for task in tasks):
        # In process nothing makes a request wait on a socket: give the backtests their turn.
        await asyncio.sleep(0.01)
        health = await http.get("/healthz")
        assert health.status_code == 200
        if not all(task.done() for task in tasks):
            answered_meanwhile += 1
    assert answered_meanwhile > 0  # /healthz answered while backtests were still running
    answers = [task.result() for task in tasks]
    done = [a.json() for a in answers if a.status_code == 200]
    assert done, [a.text for a in answers]
    assert all(d["scanned"] == EVENTS and d["matched"] == 1000 for d in done)
    for refused in (a for a in answers if a.status_code != 200):
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"


async def test_scans_beyond_the_queue_get_429_with_retry_after(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(insights, "SCAN_QUEUE", 1)
    service = http.app.state.bud.insights  # type: ignore[attr-defined]
    await publish(http, 10)
    for _ in range(insights.SCAN_CONCURRENCY):
        await service._scans.acquire()  # every slot taken, as by running scans
    body: dict[str, Any] = {"event_type": "model.added", "limit": 10}
    waiting = asyncio.create_task(http.post("/v1/event-triggers/backtest", json=body))
    for _ in range(100):  # the request reaches the queue after a few turns of the loop
        if service._scan_waiting:
            break
        await asyncio.sleep(0.01)
    assert service._scan_waiting == 1
    refused = await http.post("/v1/event-triggers/backtest", json=body)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert "too many scans" in refused.json()["error"]["message"]
    stats = await http.get("/v1/event-triggers/trig_none/stats")
    assert stats.status_code == 429  # stats share the bound
    for _ in range(insights.SCAN_CONCURRENCY):
        service._scans.release()
    assert (await waiting).status_code == 200  # the one that waited ran once a slot freed
    assert (await waiting).json()["scanned"] == 10


async def test_backtests_read_in_chunks(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(insights, "SCAN_CHUNK", 7)
    await publish(http, 30)
    body = {"event_type": "model.added", "filter": {"n": {"$lt": 5}}, "limit": 25}
    answer = (await http.post("/v1/event-triggers/backtest", json=body)).json()
    assert answer["scanned"] == 25  # the newest 25 of 30: n = 5 .. 29
    assert answer["matched"] == 0
    everything = {**body, "limit": 30}
    answer = (await http.post("/v1/event-triggers/backtest", json=everything)).json()
    assert (answer["scanned"], answer["matched"]) == (30, 5)
