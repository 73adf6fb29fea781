"""Trigger matching: the index against a naive loop over every compiled filter.

Run ``python benchmarks/bench_matching.py [--quick]``. For each trigger count it registers
triggers with mixed operators on one event type (mostly equality on ``model_id`` /
``cluster_id`` with many distinct values, some ``$in`` lists, about 1% scan-only
``$prefix`` / ``$gt`` / ``$or`` filters), replays events that each match only a few
triggers, and reports throughput and per-event latency. DESIGN.md section 6 asks for
at least 50,000 events/s with 10,000 triggers.

It then loads 100,000 triggers of the same mix into the engine's ``Matcher`` in a fresh
process (rows decoded from JSON, as the store hands them over) and reports the memory they
cost: resident-set growth per trigger, and the process total, against DESIGN.md section 6's
"server memory < 300 MB with 100,000 triggers".
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from bud.filters import Filter, TriggerIndex, compile_filter

EVENT_TYPE = "model.added"
TARGET_TRIGGERS = 10_000
TARGET_EVENTS_PER_S = 50_000
MEMORY_TRIGGERS = 100_000
TARGET_SERVER_MB = 300


def make_filter(i: int, n: int, rng: random.Random) -> dict[str, Any]:
    """The i-th of n trigger filters; ids are spread so each event matches only a few."""
    clusters = max(1, n // 4)
    roll = i % 100
    if roll == 0:
        scan_only: list[dict[str, Any]] = [
            {"model_name": {"$prefix": f"never-{i}-"}},
            {"replicas": {"$gt": 1_000 + i}},
            {"$or": [{"model_id": f"gone-{i}"}, {"cluster_id": f"gone-{i}"}]},
        ]
        return scan_only[(i // 100) % len(scan_only)]
    if roll < 60:
        return {"model_id": f"m{rng.randrange(n)}", "model_source": "hugging_face"}
    if roll < 80:
        return {"cluster_id": f"c{rng.randrange(clusters)}", "replicas": {"$gte": 1}}
    if roll < 90:
        return {"model_id": {"$in": [f"m{rng.randrange(n)}" for _ in range(3)]}}
    if roll < 95:
        return {
            "environment": ["production", "staging"],
            "cluster_id": f"c{rng.randrange(clusters)}",
        }
    return {
        "model_id": f"m{rng.randrange(n)}",
        "model_name": {"$wildcard": "llama-*-instruct"},
        "$event.source": "budmodel",
    }


def make_event(n: int, rng: random.Random) -> dict[str, Any]:
    clusters = max(1, n // 4)
    return {
        "event_type": EVENT_TYPE,
        "event_id": f"evt_{rng.randrange(10**9)}",
        "source": "budmodel",
        "data": {
            # Twice the id space, so about half the events match no model_id trigger.
            "model_id": f"m{rng.randrange(2 * n)}",
            "cluster_id": f"c{rng.randrange(2 * clusters)}",
            "model_name": "llama-3-8b-instruct",
            "model_source": rng.choice(["hugging_face", "s3"]),
            "environment": rng.choice(["production", "staging", "dev"]),
            "replicas": rng.randrange(1, 8),
            "tags": ["a", "b"],
        },
        "depth": 0,
    }


def timed(
    fn: Callable[[Mapping[str, Any]], list[str]], events: list[dict[str, Any]], budget_s: float
) -> tuple[float, list[float], int]:
    """Events/s over a batch loop, then per-event latencies, each within ``budget_s``."""
    clock = time.perf_counter
    done = 0
    start = clock()
    deadline = start + budget_s
    while True:
        for event in events:
            fn(event)
        done += len(events)
        if clock() >= deadline:
            break
    rate = done / (clock() - start)
    latencies: list[float] = []
    deadline = clock() + budget_s
    while clock() < deadline or len(latencies) < 3:
        for event in events:
            t0 = clock()
            fn(event)
            latencies.append(clock() - t0)
            if clock() >= deadline and len(latencies) >= 3:
                break
    return rate, latencies, done


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(n: int, quick: bool) -> dict[str, float]:
    rng = random.Random(n)
    filters = [make_filter(i, n, rng) for i in range(n)]
    index = TriggerIndex()
    compiled: list[tuple[str, Filter]] = []
    t0 = time.perf_counter()
    for i, source in enumerate(filters):
        compiled.append((f"trig_{i}", compile_filter(source)))
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for trigger_id, compiled_filter in compiled:
        index.put(trigger_id, EVENT_TYPE, compiled_filter)
    put_s = time.perf_counter() - t0

    events = [make_event(n, rng) for _ in range(1_000 if not quick else 300)]

    def naive(event: Mapping[str, Any]) -> list[str]:
        return [tid for tid, flt in compiled if flt.matches(event)]

    # The index must answer exactly what the naive loop answers.
    # The naive loop takes ~0.2 s per event at 100,000 triggers, so check fewer there.
    checked = events[: 50 if n <= 10_000 else 10]
    hits = 0
    for event in checked:
        expected = naive(event)
        if index.match(event) != expected:
            raise SystemExit(f"index and naive loop disagree at {n} triggers")
        hits += len(expected)

    budget = 0.25 if quick else 1.0
    idx_rate, idx_lat, _ = timed(index.match, events, budget)
    naive_budget = budget if n <= 10_000 else budget / 2
    naive_rate, naive_lat, _ = timed(naive, events[:50], naive_budget)
    return {
        "n": n,
        "odd": sum(1 for i in range(n) if i % 100 == 0),
        "compile_us": compile_s / n * 1e6,
        "put_us": put_s / n * 1e6,
        "hits": hits / len(checked),
        "idx_rate": idx_rate,
        "idx_p50": percentile(idx_lat, 0.50) * 1e6,
        "idx_p99": percentile(idx_lat, 0.99) * 1e6,
        "naive_rate": naive_rate,
        "naive_p50": percentile(naive_lat, 0.50) * 1e6,
        "naive_p99": percentile(naive_lat, 0.99) * 1e6,
    }


def rss_bytes() -> int:
    """The current resident set size (Linux), else the peak one."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def memory_child(n: int) -> None:
    """In a fresh process: load n triggers into a Matcher and print the memory they took."""
    from bud.engine.matcher import Matcher

    rng = random.Random(n)
    gc.collect()
    before = rss_bytes()
    matcher = Matcher()
    for i in range(n):
        row = {
            "id": f"trig_{i:06d}",
            "pipeline_id": f"pipe_{i % 500}",
            "event_type": EVENT_TYPE,
            "enabled": True,
            "filter": make_filter(i, n, rng),
            "name": None,
            "flow": None,
            "updated_at": time.time(),
        }
        # Like a row from the store: every string decoded afresh, nothing shared by accident.
        matcher.put(json.loads(json.dumps(row)))
    gc.collect()
    after = rss_bytes()
    assert len(matcher) == n
    print(json.dumps({"n": n, "delta": after - before, "total": after}))


def measure_memory(n: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(n)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller run, about 12 s")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child)
        return 0
    sizes = [10, 1_000, 10_000] if args.quick else [10, 1_000, 10_000, 100_000]

    print(f"python {sys.version.split()[0]}, {'quick' if args.quick else 'full'} run")
    header = (
        f"{'triggers':>9} {'$prefix/$gt/$or':>15} {'hits/evt':>8} {'compile+put us':>14} | "
        f"{'index ev/s':>10} {'p50 us':>7} {'p99 us':>7} | "
        f"{'naive ev/s':>10} {'p50 us':>9} {'p99 us':>9} | {'speedup':>7}"
    )
    print(header)
    print("-" * len(header))
    results = []
    for n in sizes:
        r = run(n, args.quick)
        results.append(r)
        speedup = r["idx_rate"] / r["naive_rate"]
        print(
            f"{n:>9,} {r['odd']:>15,} {r['hits']:>8.2f} {r['compile_us'] + r['put_us']:>14.1f} | "
            f"{r['idx_rate']:>10,.0f} {r['idx_p50']:>7.1f} {r['idx_p99']:>7.1f} | "
            f"{r['naive_rate']:>10,.0f} {r['naive_p50']:>9.1f} {r['naive_p99']:>9.1f} | "
            f"{speedup:>6.0f}x",
            flush=True,
        )

    at_target = next(r for r in results if r["n"] == TARGET_TRIGGERS)
    verdict = "PASS" if at_target["idx_rate"] >= TARGET_EVENTS_PER_S else "FAIL"
    print(
        f"\nDESIGN target: >= {TARGET_EVENTS_PER_S:,} events/s at {TARGET_TRIGGERS:,} triggers: "
        f"{at_target['idx_rate']:,.0f} events/s -> {verdict}"
    )

    mem = measure_memory(MEMORY_TRIGGERS)
    per_trigger = mem["delta"] / mem["n"]
    total_mb = mem["total"] / 2**20
    verdict = "PASS" if total_mb < TARGET_SERVER_MB else "FAIL"
    print(
        f"Matcher memory at {mem['n']:,} triggers: {per_trigger:,.0f} bytes/trigger "
        f"(RSS +{mem['delta'] / 2**20:.1f} MB, process total {total_mb:.1f} MB)\n"
        f"DESIGN target: server memory < {TARGET_SERVER_MB} MB with {MEMORY_TRIGGERS:,} "
        f"triggers: matcher process {total_mb:.1f} MB -> {verdict}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
