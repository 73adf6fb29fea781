"""A new user's first minute: bud serve --demo, register a model, watch it deploy."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bud import BudClient
from bud.demo import DEMO_PIPELINES
from tests.support import BudProcess

pytestmark = pytest.mark.e2e


def test_demo_then_the_readme_commands(data_dir: Path) -> None:
    with BudProcess(data_dir, args=["--demo"]) as server:
        client = BudClient(base_url=server.url)
        deadline = time.monotonic() + 20
        while len(list(client.pipelines.list())) < len(DEMO_PIPELINES) or not list(
            client.channels.list()
        ):
            assert time.monotonic() < deadline, "the demo was not loaded"
            time.sleep(0.2)
        names = sorted(p.name for p in client.pipelines.list())
        assert names == sorted(p["name"] for p in DEMO_PIPELINES)
        assert client.clusters.get("cluster_prod").environment == "production"

        env = {"BUD_URL": server.url, "PATH": str(Path(sys.executable).parent)}
        bud = [sys.executable, "-m", "bud"]
        added = subprocess.run(
            [
                *bud,
                "models",
                "add",
                "Llama-3.2-1B",
                "--source",
                "hugging_face",
                "--meta",
                "auto_deploy=true",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert added.returncode == 0, added.stderr
        execution_id = next(w for w in added.stdout.split() if w.startswith("exe_"))
        watched = subprocess.run(
            [*bud, "executions", "watch", execution_id],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert watched.returncode == 0, watched.stdout + watched.stderr
        assert "succeeded" in watched.stdout
        [deployment] = list(client.deployments.list())
        assert deployment.name == "Llama-3.2-1B-auto"
        inbox = httpx.get(f"{server.url}/demo/slack").json()["items"]
        assert [m["text"] for m in inbox] == ["Deployed Llama-3.2-1B successfully"]
