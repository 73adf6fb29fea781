"""How a real ``bud serve`` answers ``/healthz`` while hostile work runs (a report, not a test).

    python benchmarks/bench_hostile.py [--port N] [--src PATH] [--events N] [--backtests N]

Starts ``bud serve`` (SQLite, fresh data directory, loopback) and samples ``/healthz`` every
10 ms, first idle, then during each scenario, printing p50/p99/max latency:

- backtests: ``--backtests`` (100) concurrent filter backtests over ``--events`` (10,000) stored
  events; also how many answered 200 and how many 429 (the scan bound);
- template bombs: pipeline runs whose step renders the nested-loop bomb or ``'a' * 10**9``;
  how each step ended (it must fail naming the limit).

``--src`` runs the server from another checkout's ``src`` (e.g. the code before a change), to
compare before and after with the same client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support import BudProcess

NESTED_LOOPS = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
BIG_STRING = "{{ 'a' * 10**9 }}"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(name: str, samples: list[float], extra: str = "") -> None:
    ms = [s * 1000 for s in samples]
    print(
        f"  {name:<34} /healthz n={len(ms):>5}  p50 {statistics.median(ms):7.1f} ms  "
        f"p99 {pct(ms, 0.99):7.1f} ms  max {max(ms):7.1f} ms  {extra}"
    )


async def sample_health(url: str, stop: asyncio.Event) -> list[float]:
    """/healthz latencies, on a client of its own (the work's client may hold every connection)."""
    samples: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        while not stop.is_set():
            samples.append(await _one_health(http))
            await asyncio.sleep(0.01)
    return samples


async def _one_health(http: httpx.AsyncClient) -> float:
    started = time.perf_counter()
    with contextlib.suppress(httpx.HTTPError):
        await http.get("/healthz")
    return time.perf_counter() - started


async def during(http: httpx.AsyncClient, work: Any) -> tuple[list[float], Any]:
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_health(str(http.base_url), stop))
    await asyncio.sleep(0.05)
    try:
        result = await work
    finally:
        stop.set()
    return await sampler, result


async def backtests(http: httpx.AsyncClient, events: int, count: int) -> None:
    for start in range(0, events, 5000):
        batch = [
            {
                "event_type": "model.added",
                "data": {"model_id": f"m{i}", "n": i, "model_source": "s"},
            }
            for i in range(start, min(events, start + 5000))
        ]
        (
            await http.post("/v1/events/batch", json={"events": batch}, timeout=120)
        ).raise_for_status()
    body = {"event_type": "model.added", "filter": {"n": {"$gte": events // 2}}, "limit": events}

    async def one() -> int:
        answer = await http.post("/v1/event-triggers/backtest", json=body, timeout=300)
        return answer.status_code

    started = time.perf_counter()
    samples, codes = await during(http, asyncio.gather(*[one() for _ in range(count)]))
    took = time.perf_counter() - started
    outcome = {c: codes.count(c) for c in sorted(set(codes))}
    report(f"{count} backtests x {events} events", samples, f"answers {outcome} in {took:.1f}s")


async def bombs(http: httpx.AsyncClient, runs: int) -> None:
    for label, template in (("nested-loop bomb", NESTED_LOOPS), ("'a' * 10**9 bomb", BIG_STRING)):
        pipeline = (
            await http.post(
                "/v1/pipelines",
                json={
                    "name": label,
                    "definition": {
                        "steps": [{"id": "x", "action": "log", "params": {"message": template}}]
                    },
                },
            )
        ).json()

        async def run_all(pipeline_id: str = pipeline["id"]) -> list[str]:
            ids = [
                (await http.post(f"/v1/pipelines/{pipeline_id}/run", json={})).json()["id"]
                for _ in range(runs)
            ]
            errors = []
            for execution_id in ids:
                while True:
                    got = (await http.get(f"/v1/executions/{execution_id}")).json()
                    if got["status"] in ("succeeded", "failed", "cancelled"):
                        errors.append(got["steps"][0]["error"] or got["status"])
                        break
                    await asyncio.sleep(0.1)
            return errors

        samples, errors = await during(http, run_all())
        report(f"{runs} runs of the {label}", samples, f"step error: {sorted(set(errors))}")


async def main(args: argparse.Namespace) -> None:
    env = {"BUD_WORKERS": "16"}
    if args.src:
        env["PYTHONPATH"] = args.src
    with tempfile.TemporaryDirectory(prefix="bud-hostile-") as tmp:
        proc = BudProcess(Path(tmp) / "bud", env=env)
        if args.port:
            proc.port, proc.url = args.port, f"http://127.0.0.1:{args.port}"
        with proc:
            async with httpx.AsyncClient(base_url=proc.url, timeout=60) as http:
                await scenarios(http, proc, args)


async def scenarios(http: httpx.AsyncClient, proc: BudProcess, args: argparse.Namespace) -> None:
    print(f"bud serve at {proc.url} (src: {args.src or 'this checkout'})")
    samples, _ = await during(http, asyncio.sleep(1.0))
    report("idle", samples)
    await backtests(http, args.events, args.backtests)
    if not args.no_bombs:
        await bombs(http, args.runs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="loopback port (default: a free one)")
    parser.add_argument("--src", help="run the server from this src directory instead")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--backtests", type=int, default=100)
    parser.add_argument("--runs", type=int, default=4, help="pipeline runs per template bomb")
    parser.add_argument("--no-bombs", action="store_true", help="skip the template bombs")
    arguments = parser.parse_args()
    if arguments.src:
        arguments.src = os.path.abspath(arguments.src)
    asyncio.run(main(arguments))
