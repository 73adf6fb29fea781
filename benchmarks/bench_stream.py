"""What the live stream (``GET /v1/stream``, docs/ui.md "Live updates") costs a real ``bud serve``.

    python benchmarks/bench_stream.py [--streams N]

Starts ``bud serve`` on a free loopback port with a fresh SQLite data directory, runs one
execution, then reports the mean latency of ``GET /v1/pipelines`` with no stream open and
with N execution streams open (each re-reads the execution every 0.3 s), and how long the
server takes to stop after SIGTERM with those streams still open.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support import BudProcess

STEPS = {"steps": [{"id": "a", "action": "log", "params": {"message": "a"}}]}


def mean_get_ms(url: str, rounds: int = 200) -> float:
    with httpx.Client(base_url=url) as http:
        for _ in range(10):
            http.get("/v1/pipelines")
        start = time.perf_counter()
        for _ in range(rounds):
            http.get("/v1/pipelines").raise_for_status()
        return (time.perf_counter() - start) / rounds * 1000


def hold(url: str, execution_id: str, opened: threading.Semaphore) -> None:
    try:
        with httpx.stream(
            "GET", f"{url}/v1/stream", params={"execution_id": execution_id}, timeout=120
        ) as response:
            opened.release()
            for _ in response.iter_lines():
                pass
    except httpx.HTTPError:
        pass  # the server went away: the point of the last measurement


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=20)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bud-bench-stream-"))
    try:
        with BudProcess(tmp / "bud") as server:
            with httpx.Client(base_url=server.url) as http:
                pipeline = http.post(
                    "/v1/pipelines", json={"name": "bench", "definition": STEPS}
                ).json()
                execution = http.post(f"/v1/pipelines/{pipeline['id']}/run", json={}).json()
            idle = mean_get_ms(server.url)
            opened = threading.Semaphore(0)
            for _ in range(args.streams):
                threading.Thread(
                    target=hold, args=(server.url, execution["id"], opened), daemon=True
                ).start()
            for _ in range(args.streams):
                opened.acquire(timeout=30)
            time.sleep(1)
            busy = mean_get_ms(server.url)
            start = time.monotonic()
            server.stop()
            stopped = time.monotonic() - start
        print(f"GET /v1/pipelines, no stream open:        {idle:6.2f} ms")
        print(f"GET /v1/pipelines, {args.streams:3d} execution streams: {busy:6.2f} ms")
        print(f"SIGTERM to exit with the streams open:    {stopped:6.2f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
