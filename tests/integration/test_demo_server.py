"""``bud serve --demo``: the demo loads in process, once, and recognises its own examples."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bud import BudClient
from bud.demo import DEMO_PIPELINES
from bud.server.app import create_app
from bud.settings import Settings

BY_NAME = {p["name"]: p for p in DEMO_PIPELINES}
AUTO_DEPLOY = BY_NAME["Auto-Deploy New Models"]
FAILURE_ALERTS = BY_NAME["Deployment Failure Alerts"]
N = len(DEMO_PIPELINES)


def _demo(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir, demo=True, port=18234, poll_seconds=0.2, health_probe_seconds=0.5
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[BudClient]:
    app = create_app(_demo(tmp_path / "data"), check_responses=True)
    with TestClient(app, base_url="http://localhost") as http, BudClient(http_client=http) as c:
        c.app = app  # type: ignore[attr-defined]
        yield c


def test_the_server_does_not_import_the_cli(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from starlette.testclient import TestClient\n"
        "from bud.server.app import create_app\n"
        "from bud.settings import Settings\n"
        f"app = create_app(Settings(data_dir=Path({str(tmp_path / 'd')!r}), demo=True))\n"
        "with TestClient(app, base_url='http://localhost') as http:\n"
        f"    assert len(http.get('/v1/pipelines').json()['items']) == {N}\n"
        "bad = sorted(m for m in sys.modules if m == 'bud.cli' or m.startswith('bud.cli.'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_demo_is_loaded_before_the_first_request(client: BudClient) -> None:
    pipelines = {p.name: p for p in client.pipelines.list()}
    assert sorted(pipelines) == sorted(BY_NAME)
    auto = pipelines[AUTO_DEPLOY["name"]]
    assert auto.definition == AUTO_DEPLOY["definition"]
    (trigger,) = client.event_triggers.list(pipeline_id=auto.id)
    assert (trigger.event_type, trigger.filter) == ("model.added", AUTO_DEPLOY["trigger"]["filter"])
    assert (auto.id, trigger.id) == ("pipe_abc123", "trig_xyz789")  # the document's ids
    assert client.clusters.get("cluster_prod").environment == "production"
    (slack,) = [c for c in client.channels.list() if c.name == "slack"]
    # Listed masked (a webhook URL's path carries its token); what the engine uses is the inbox.
    assert slack.config["url"] == "http://127.0.0.1:18234/******"
    core = client.app.state.bud  # type: ignore[attr-defined]
    assert core.engine.catalogue.channels["slack"]["url"] == "http://127.0.0.1:18234/demo/slack"


def test_loading_again_creates_nothing(tmp_path: Path) -> None:
    for _ in range(2):
        with TestClient(create_app(_demo(tmp_path / "data")), base_url="http://localhost") as http:
            client = BudClient(http_client=http)
            assert len(client.pipelines.list().to_list()) == N
            assert len(client.event_triggers.list().to_list()) == N
            assert len(client.clusters.list().to_list()) == 1


def test_the_product_documents_snippet_against_the_demo_deploys_once(client: BudClient) -> None:
    loaded = {p.name: p.id for p in client.pipelines.list()}
    # The product document's auto-deploy example, as written.
    pipeline = client.pipelines.create(
        name="Auto-Deploy New Models", definition=AUTO_DEPLOY["definition"]
    )
    assert pipeline.id == loaded["Auto-Deploy New Models"]  # the demo's own, not a copy
    trigger = client.event_triggers.create(
        pipeline_id=pipeline.id,
        event_type="model.added",
        filter={"model_source": "hugging_face", "auto_deploy": True},
        enabled=True,
    )
    assert len(client.event_triggers.list(pipeline_id=pipeline.id).to_list()) == 1
    # And the failure-alert example (no filter).
    alerts = client.pipelines.create(
        name="Deployment Failure Alerts", definition=FAILURE_ALERTS["definition"]
    )
    assert alerts.id == loaded["Deployment Failure Alerts"]
    client.event_triggers.create(pipeline_id=alerts.id, event_type="deployment.failed")
    assert len(client.pipelines.list().to_list()) == N
    assert len(client.event_triggers.list().to_list()) == N

    model = client.models.add("Llama-3.2-1B", "hugging_face", auto_deploy=True)
    (event,) = client.events.list(event_type="model.added")
    (execution_id,) = client.events.get(event.event_id).executions or []
    done = client.executions.wait(execution_id, timeout=30)
    assert done.trigger_id == trigger.id
    deployments = client.deployments.list(model_id=model.id).to_list()
    assert [d.name for d in deployments] == ["Llama-3.2-1B-auto"]


def test_what_differs_from_the_demo_is_created_as_usual(client: BudClient) -> None:
    changed = {"steps": [*AUTO_DEPLOY["definition"]["steps"][:1]]}
    other = client.pipelines.create(name="Auto-Deploy New Models", definition=changed)
    assert len(client.pipelines.list().to_list()) == N + 1
    client.event_triggers.create(pipeline_id=other.id, event_type="model.added")
    loaded = next(p for p in client.pipelines.list() if p.definition == AUTO_DEPLOY["definition"])
    # Another filter on the demo's pipeline is a new trigger too.
    client.event_triggers.create(
        pipeline_id=loaded.id, event_type="model.added", filter={"model_source": "local"}
    )
    assert len(client.event_triggers.list(pipeline_id=loaded.id).to_list()) == 2


def test_every_example_created_again_answers_the_loaded_one(client: BudClient) -> None:
    loaded = {p.name: p.id for p in client.pipelines.list()}
    for spec in DEMO_PIPELINES:
        again = client.pipelines.create(name=spec["name"], definition=spec["definition"])
        assert again.id == loaded[spec["name"]], spec["file"]
        want = spec["trigger"]
        trigger = client.event_triggers.create(
            pipeline_id=again.id, event_type=want["event_type"], filter=want["filter"]
        )
        assert trigger.name == want["name"], spec["file"]
    assert len(client.pipelines.list().to_list()) == N
    assert len(client.event_triggers.list().to_list()) == N


def test_every_shipped_example_is_a_valid_pipeline_with_a_trigger() -> None:
    from bud.demo import EXAMPLE_FILES, EXAMPLES, EXAMPLES_DIR

    assert sorted(p.name for p in EXAMPLES_DIR.glob("*.yaml")) == sorted(EXAMPLE_FILES)
    # the six use cases of the product document's table, each with an example
    assert {e["trigger"]["event_type"] for e in EXAMPLES} == {
        "model.added",
        "model.updated",
        "deployment.created",
        "deployment.failed",
        "cluster.ready",
        "cluster.unhealthy",
    }
    assert len({e["name"] for e in EXAMPLES}) == len(EXAMPLES)
    for example in EXAMPLES:
        assert set(example) <= {
            "id", "name", "description", "definition", "trigger", "requires", "file"
        }, example["file"]  # fmt: skip
    # what this build cannot run yet is left out of the demo, visibly
    assert [e["name"] for e in EXAMPLES if e not in DEMO_PIPELINES] == [
        e["name"] for e in EXAMPLES if e["requires"] and e not in DEMO_PIPELINES
    ]
