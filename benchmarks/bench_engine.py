"""End-to-end figures of a real ``bud serve`` on this machine, against DESIGN section 6.

    python benchmarks/bench_engine.py [--quick] [--keep]

Starts ``bud serve`` on a free loopback port with a fresh SQLite data directory, then measures:
single-event publish (requests/s, 16 concurrent clients), batched publish (events/s, ack after
commit), event accepted -> execution started latency (p50/p99), step-to-step dispatch overhead
(p50), and executions/s of a 3-step ``log`` pipeline. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support import BudProcess

# the benchmark fires one trigger far more often than the default circuit breaker allows
NO_BREAKER = {"circuit_breaker": {"max_fires": 10_000_000, "window_seconds": 60}}
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"event_type": "bench.ingest", "data": {"model_id": "m1"}}'
wrk.headers["Content-Type"] = "application/json"
"""


def wrk_publish(url: str, seconds: int) -> float | None:
    """Single-event publish measured by wrk (a C client), when it is installed."""
    if shutil.which("wrk") is None:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT)
    out = subprocess.run(
        ["wrk", "-t1", "-c16", f"-d{seconds}s", "-s", f.name, f"{url}/v1/events"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    return None


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def row(name: str, value: float, unit: str, target: str, ok: bool) -> None:
    print(f"  {name:<44} {value:>12,.1f} {unit:<8} target {target:<14} {'PASS' if ok else 'MISS'}")


async def single_publish(url: str, total: int, concurrency: int = 16) -> float:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        counter = iter(range(total))

        async def worker() -> None:
            for i in counter:
                r = await http.post(
                    "/v1/events", json={"event_type": "bench.ingest", "data": {"i": i}}
                )
                r.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return total / (time.perf_counter() - started)


async def batch_publish(
    url: str, batches: int, size: int, event_type: str = "bench.ingest"
) -> float:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        started = time.perf_counter()
        for b in range(batches):
            events = [
                {"event_type": event_type, "data": {"model_id": f"x{b}-{i}"}} for i in range(size)
            ]
            r = await http.post("/v1/events/batch", json={"events": events})
            r.raise_for_status()
        return batches * size / (time.perf_counter() - started)


async def make_triggers(url: str, pipeline_id: str, event_type: str, count: int) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        counter = iter(range(count))

        async def worker() -> None:
            for i in counter:
                body = {
                    "pipeline_id": pipeline_id,
                    "event_type": event_type,
                    "filter": {"model_id": f"m{i}"},
                }
                (await http.post("/v1/event-triggers", json=body)).raise_for_status()

        await asyncio.gather(*(worker() for _ in range(8)))


def finished_count(http: httpx.Client) -> int:
    """Executions finished so far, from the server's Prometheus counter."""
    total = 0.0
    for line in http.get("/metrics").text.splitlines():
        if line.startswith("bud_executions_finished_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def wait_finished(http: httpx.Client, count: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        seen = finished_count(http)
        if seen >= count or time.monotonic() > deadline:
            return seen
        time.sleep(0.01)


def wait_all(http: httpx.Client, pipeline_id: str, count: int, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        items, cursor = [], None
        while True:
            params = {
                "pipeline_id": pipeline_id,
                "limit": 500,
                **({"cursor": cursor} if cursor else {}),
            }
            page = http.get("/v1/executions", params=params).json()
            items += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                break
        done = [e for e in items if e["status"] in ("succeeded", "failed", "cancelled")]
        if len(done) >= count or time.monotonic() > deadline:
            return done
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()
    scale = 0.2 if args.quick else 1.0
    data = Path(tempfile.mkdtemp(prefix="bud-bench-"))
    server = BudProcess(data / "bud", env={"BUD_LOG_LEVEL": "warning"}).start()
    http = httpx.Client(base_url=server.url, timeout=60)
    try:
        http.post("/v1/event-types", json={"name": "bench.ingest"}).raise_for_status()
        http.post("/v1/event-types", json={"name": "bench.latency"}).raise_for_status()
        http.post("/v1/event-types", json={"name": "bench.three"}).raise_for_status()
        one = http.post(
            "/v1/pipelines",
            json={
                "name": "one",
                "definition": {
                    "steps": [{"id": "a", "action": "log", "params": {"message": "{{ event.i }}"}}]
                },
            },
        ).json()
        three = http.post(
            "/v1/pipelines",
            json={
                "name": "three",
                "definition": {
                    "steps": [
                        {"id": "a", "action": "log", "params": {"message": "a {{ event.i }}"}},
                        {
                            "id": "b",
                            "action": "log",
                            "params": {"message": "b"},
                            "depends_on": ["a"],
                        },
                        {
                            "id": "c",
                            "action": "log",
                            "params": {"message": "c"},
                            "depends_on": ["b"],
                        },
                    ]
                },
            },
        ).json()
        http.post(
            "/v1/event-triggers",
            json={"pipeline_id": one["id"], "event_type": "bench.latency", "flow": NO_BREAKER},
        )
        http.post(
            "/v1/event-triggers",
            json={"pipeline_id": three["id"], "event_type": "bench.three", "flow": NO_BREAKER},
        )

        print(
            f"Bud Pipelines benchmark — bud serve on {server.url}, SQLite, "
            f"{'quick' if args.quick else 'full'} run\n"
        )
        single = asyncio.run(single_publish(server.url, int(3000 * scale)))
        single_wrk = wrk_publish(server.url, 3 if args.quick else 10)
        batched = asyncio.run(batch_publish(server.url, max(2, int(20 * scale)), 1000))

        # the same with many triggers on the type that cannot match: the index skips them.
        # Measured against 10 non-matching triggers on another type, rounds interleaved so
        # that the machine's noise hits both alike; the median round of each is reported.
        crowd = int(10_000 * scale)
        for name, count in (("bench.sparse", 10), ("bench.crowded", crowd)):
            http.post("/v1/event-types", json={"name": name}).raise_for_status()
            asyncio.run(make_triggers(server.url, one["id"], name, count))
        rounds: dict[str, list[float]] = {"bench.sparse": [], "bench.crowded": []}
        for _ in range(5):
            for name, rates in rounds.items():
                rates.append(
                    asyncio.run(batch_publish(server.url, max(2, int(10 * scale)), 1000, name))
                )
        sparse = statistics.median(rounds["bench.sparse"])
        crowded = statistics.median(rounds["bench.crowded"])

        # latency: events one at a time, paced, each firing a one-step pipeline
        n = int(300 * scale)
        for i in range(n):
            http.post(
                "/v1/events", json={"event_type": "bench.latency", "data": {"i": i}}
            ).raise_for_status()
            time.sleep(0.01)
        executions = wait_all(http, one["id"], n, 60)
        lat = []
        for e in executions[:n]:
            event = http.get(f"/v1/events/{e['event_id']}").json()
            lat.append((ts(e["started_at"]) - ts(event["received_at"])) * 1000)

        # executions/s of a 3-step log pipeline, and step-to-step dispatch overhead
        m = int(1000 * scale)
        before = finished_count(http)
        started = time.perf_counter()
        for b in range(0, m, 250):
            http.post(
                "/v1/events/batch",
                json={
                    "events": [
                        {"event_type": "bench.three", "data": {"i": i}}
                        for i in range(b, min(m, b + 250))
                    ]
                },
            ).raise_for_status()
        # Finished executions are counted from /metrics, every 10 ms: listing executions
        # while they run would charge the poller's cost to the engine.
        finished = wait_finished(http, before + m, 300)
        elapsed = time.perf_counter() - started
        done = wait_all(http, three["id"], m, 60)
        rate = (finished - before) / elapsed
        gaps = []
        for e in done[:100]:
            steps = http.get(f"/v1/executions/{e['id']}").json()["steps"]
            for prev, nxt in itertools.pairwise(steps):
                gaps.append((ts(nxt["started_at"]) - ts(prev["finished_at"])) * 1000)
        rss = _rss_mb(server)

        print("figure                                              measured          DESIGN §6")
        row("single-event publish (16 httpx clients)", single, "req/s", ">= 2,000", single >= 2000)
        if single_wrk is not None:
            row(
                "single-event publish (wrk, 16 connections)",
                single_wrk,
                "req/s",
                ">= 2,000",
                single_wrk >= 2000,
            )
        row("batched publish, ack after commit", batched, "events/s", ">= 20,000", batched >= 20000)
        row("  ... with 10 non-matching triggers on the type", sparse, "events/s", "-", True)
        row(
            f"  ... with {crowd:,} non-matching triggers on the type",
            crowded,
            "events/s",
            ">= 20,000",
            crowded >= 20000,
        )
        row(
            f"  ... ratio {crowd:,} / 10 non-matching triggers",
            crowded / sparse,
            "x",
            ">= 0.8",
            crowded / sparse >= 0.8,
        )
        row("event accepted -> execution started, p50", statistics.median(lat), "ms", "-", True)
        row(
            "event accepted -> execution started, p99",
            pct(lat, 0.99),
            "ms",
            "< 20 ms",
            pct(lat, 0.99) < 20,
        )
        row(
            "step-to-step dispatch overhead, p50",
            statistics.median(gaps),
            "ms",
            "< 5 ms",
            statistics.median(gaps) < 5,
        )
        row("3-step log pipeline executions", rate, "exec/s", ">= 1,000", rate >= 1000)
        if rss:
            row("server resident memory after the run", rss, "MB", "< 300 MB", rss < 300)
        print(
            f"\n  {len(done)}/{m} three-step executions finished in {elapsed:.1f}s "
            f"({sum(1 for e in done if e['status'] == 'succeeded')} succeeded)"
        )
        print(
            "  published baselines (DESIGN §6): Prefect 3.9 on this machine ~2 s from event to a "
            "finished one-step run, 2.6 runs/s for a burst of 1,000 events; per-task overhead "
            "Hatchet ~30 ms, Temporal ~74 ms, Prefect ~120 ms."
        )
    finally:
        http.close()
        server.stop()


def _rss_mb(server: BudProcess) -> float | None:
    if server.proc is None:
        return None
    try:
        for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


if __name__ == "__main__":
    main()
