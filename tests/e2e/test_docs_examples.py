"""Every example in README.md and docs/*.md runs as written, against ``bud serve --demo``.

A fenced block with a language (python, bash, json, yaml) is an example; an untagged block is
a synopsis or sample output and is not run. Each example is read from its file and run by the
handler that ``EXAMPLES`` names for it (keyed by file and first line), so changing an example
changes what runs, and a new or removed example fails ``test_every_example_has_a_runner``.

Python examples run one by one in a fresh namespace holding what the page says its examples
assume (``client = BudClient()`` for the demo server; the demo's ``pipe_abc123`` and
``trig_xyz789``; ``event_id``/``data`` of a published event). Bash examples run line by line
with ``bud`` as this interpreter's ``python -m bud``, ``BUD_URL`` pointing at the server and
placeholders (``PIPE_ID``, ``<execution id>``) replaced by real ids.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from bud import BudClient
from bud.filters import compile_filter
from bud.store import open_repository
from tests.support import BudProcess, HttpReceiver

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]
LANGS = ("python", "bash", "json", "yaml")


@dataclass
class Block:
    doc: str
    line: int
    lang: str
    text: str

    @property
    def key(self) -> str:
        """The first line, spaces collapsed, at most 60 characters."""
        first = next(line for line in self.text.splitlines() if line.strip())
        return " ".join(first.split())[:60]


def blocks(doc: str) -> list[Block]:
    found: list[Block] = []
    lang: str | None = None
    start = 0
    body: list[str] = []
    for number, line in enumerate((ROOT / doc).read_text().splitlines(), 1):
        if lang is None and line.startswith("```"):
            lang, start, body = line[3:].strip(), number, []
        elif lang is not None and line.startswith("```"):
            if lang in LANGS:
                found.append(Block(doc, start, lang, "\n".join(body)))
            lang = None
        elif lang is not None:
            body.append(line)
    return found


@dataclass
class Context:
    server: BudProcess
    tmp_path: Path
    monkeypatch: pytest.MonkeyPatch
    receiver: HttpReceiver
    names: dict[str, Any] = field(default_factory=dict)

    @property
    def client(self) -> BudClient:
        return BudClient(base_url=self.server.url)

    def namespace(self) -> dict[str, Any]:
        return {"__name__": "__doc_example__", "client": self.client, **self.names}


Runner = Callable[[Context, Block], None]


# ---------------------------------------------------------------------------------------------
# Runners


def python(check: Callable[[dict[str, Any], str], None] | None = None) -> Runner:
    def run(ctx: Context, block: Block) -> None:
        namespace = ctx.namespace()
        out = io.StringIO()
        code = compile(
            block.text, f"{block.doc}:{block.line}", "exec", ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        )
        with contextlib.redirect_stdout(out):
            result = eval(code, namespace)  # top-level await gives a coroutine
            if asyncio.iscoroutine(result):
                asyncio.run(result)
        if check is not None:
            check(namespace, out.getvalue())

    return run


def bash(*, skip: dict[str, str] | None = None) -> Runner:
    """Run each command line; ``skip`` maps a line's start to why it is not run here."""

    def run(ctx: Context, block: Block) -> None:
        printed = ""
        for raw in block.text.splitlines():
            line = re.split(r"\s{2,}#", raw)[0].strip()
            if not line:
                continue
            if skip and any(line.startswith(s) for s in skip):
                continue
            line = _substitute(ctx, line, printed)
            args = shlex.split(line)
            if args[0] in ("bud", ".venv/bin/bud"):
                args = [sys.executable, "-m", "bud", *args[1:]]
            done = subprocess.run(
                args,
                cwd=ctx.tmp_path,
                env={**os.environ, "BUD_URL": ctx.server.url, "COLUMNS": "200"},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, (
                f"{block.doc}:{block.line}: {line}\n{done.stdout}{done.stderr}"
            )
            printed = done.stdout

    return run


def _substitute(ctx: Context, line: str, printed: str) -> str:
    line = re.sub(r"\s\[[^\]]*\]", "", line)  # optional parts of a synopsis line
    execution = re.search(r"exe_[0-9a-z]+", printed)
    if execution:
        line = line.replace("<the execution id it printed>", execution.group(0))
    for placeholder, value in PLACEHOLDERS.items():
        line = line.replace(placeholder, value)
    return line


# Placeholders of synopsis-style lines: the demo's auto-deploy pipeline and its trigger.
PLACEHOLDERS = {"PIPE_ID": "pipe_abc123", "TRIG_ID": "trig_xyz789"}


def not_run(why: str) -> Runner:
    assert why

    def run(_ctx: Context, _block: Block) -> None:
        return None

    return run


def on_a_store_of_the_last_release(runner: Runner) -> Runner:
    """Run ``runner`` where ``.bud`` holds a store at the newest revision."""

    def run(ctx: Context, block: Block) -> None:
        async def make() -> None:
            async with open_repository(f"sqlite:///{ctx.tmp_path / '.bud' / 'bud.db'}"):
                pass

        asyncio.run(make())
        runner(ctx, block)

    return run


def json_step(ctx: Context, block: Block) -> None:
    step = json.loads(block.text)
    answer = ctx.client.pipelines.validate({"steps": [step]})
    assert answer.valid, answer.errors


def json_definition(ctx: Context, block: Block) -> None:
    answer = ctx.client.pipelines.validate(json.loads(block.text))
    assert answer.valid, answer.errors


def json_filter(ctx: Context, block: Block) -> None:
    flt = json.loads(block.text)
    compile_filter(flt)
    trigger = ctx.client.event_triggers.create(
        pipeline_id="pipe_abc123", event_type="model.added", filter=flt
    )
    assert ctx.client.event_triggers.test(trigger.id, {"data": flt}).matched


def json_flow(ctx: Context, block: Block) -> None:
    flow = json.loads(block.text)
    trigger = ctx.client.event_triggers.create(
        pipeline_id="pipe_abc123", event_type="model.added", flow=flow
    )
    assert trigger.flow == flow


def same_keys_as(real: Callable[[Context], dict[str, Any]]) -> Runner:
    """A sample object (values may be placeholders): its keys are the real object's keys."""

    def run(ctx: Context, block: Block) -> None:
        sample = json.loads(block.text.replace("[ ... ]", "[]"))
        assert set(sample) == set(real(ctx)), f"{block.doc}:{block.line}"

    return run


def equal_to(real: Callable[[Context], Any]) -> Runner:
    def run(ctx: Context, block: Block) -> None:
        assert json.loads(block.text) == real(ctx), f"{block.doc}:{block.line}"

    return run


def yaml_pipeline_file(ctx: Context, block: Block) -> None:
    path = ctx.tmp_path / "pipeline.yaml"
    path.write_text(block.text)
    assert yaml.safe_load(block.text)["definition"]
    done = subprocess.run(
        [sys.executable, "-m", "bud", "pipelines", "create", str(path)],
        env={**os.environ, "BUD_URL": ctx.server.url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------------------------------------
# What is real for the sample shapes


def _verdict_leaf(_ctx: Context) -> Any:
    event = {"event_type": "deployment.created", "data": {"environment": "staging"}}
    return compile_filter({"environment": "production"}).explain(event)["children"][0]


def _verdict_or(_ctx: Context) -> Any:
    event = {"event_type": "x", "data": {}}
    return compile_filter({"$or": [{"a": 1}, {"b": 2}]}).explain(event)["children"][0]


def _or_node_matches(ctx: Context, block: Block) -> None:
    sample = json.loads(block.text.replace("[ ... ]", "[]"))
    real = _verdict_or(ctx)
    assert {k: v for k, v in real.items() if k != "children"} == {
        k: v for k, v in sample.items() if k != "children"
    }


def _notification(ctx: Context, channel: str) -> dict[str, Any]:
    client = ctx.client
    pipeline = client.pipelines.create(
        name=f"notify {channel}",
        definition={
            "steps": [
                {
                    "id": "notify",
                    "action": "notification",
                    "params": {"message": "hi", "channel": channel},
                }
            ]
        },
    )
    run = client.pipelines.run(pipeline.id)
    done = client.executions.wait(run.id, timeout=30)
    assert done.status == "succeeded", done
    (step,) = done.steps or []
    return step.outputs or {}


def _webhook_payload(ctx: Context) -> dict[str, Any]:
    ctx.client.channels.set("webhook", url=f"{ctx.receiver.url}/hook")
    _notification(ctx, "webhook")
    payload: dict[str, Any] = json.loads(ctx.receiver.requests[-1]["body"])
    return payload


def _stats(ctx: Context) -> dict[str, Any]:
    return ctx.client.event_triggers.stats("trig_xyz789").model_dump()


def _readme_prints_succeeded(_ns: dict[str, Any], out: str) -> None:
    assert out.strip() == "succeeded"


# ---------------------------------------------------------------------------------------------
# The examples, by file and first line

EXAMPLES: dict[tuple[str, str], Runner] = {
    (
        "README.md",
        "./scripts/serve # start Bud Pipelines on its embedded defaul",
    ): not_run(
        "the commands that set up and run this very suite; ./scripts/serve is `bud serve`, "
        "which every e2e test starts"
    ),
    (
        "README.md",
        "./scripts/serve --demo # terminal 1",
    ): bash(skip={"./scripts/serve --demo": "the server this test started with --demo"}),
    ("README.md", "from bud import BudClient"): python(_readme_prints_succeeded),
    (
        "README.md",
        './scripts/test -m "not browser" # any pytest arguments pass ',
    ): not_run("the development loop: the test suite, the checks and the benchmarks themselves"),
    ("docs/cli.md", "name: Auto-Deploy New Models"): yaml_pipeline_file,
    ("docs/cli.md", "pipe=$(bud pipelines create pipeline.yaml --json | jq -r .id"): not_run(
        "a shell pipeline through jq; every command's --json output is tested in "
        "tests/integration/test_cli.py"
    ),
    ("docs/sdk.md", ".venv/bin/python scripts/unasync.py # rewrites _sync.py"): not_run(
        "the development loop: scripts/check runs its --check form, and "
        "tests/integration/test_sdk_methods.py checks the clients do not drift"
    ),
    (
        "docs/cli.md",
        "bud pipelines dry-run PIPE_ID --event @event.json --param se",
    ): bash(),
    ("docs/cli.md", 'monkeypatch.setattr(bud.cli.app, "make_client",'): python(),
    ("docs/filters.md", "from bud.filters import compile_filter, explain, summarize"): python(),
    (
        "docs/workflows.md",
        '{"description": "deploy every model found, two at a time",',
    ): json_definition,
    (
        "docs/workflows.md",
        '{"description": "deploy, then wait until the deployment is r',
    ): json_definition,
    ("docs/workflows.md", '{"cancel_on": [{"event_type": "model.updated",'): json_definition,
    ("docs/filters.md", '{"model_source": "hugging_face", "auto_deploy": true}'): json_filter,
    (
        "docs/filters.md",
        '{"op": "$or", "path": "$or", "matched": false, "children": [',
    ): _or_node_matches,
    (
        "docs/filters.md",
        '{"path": "data.environment", "op": "$eq", "expected": "produ',
    ): equal_to(_verdict_leaf),
    ("docs/filters.md", "from bud.filters import TriggerIndex"): python(),
    (
        "docs/operations.md",
        "bud db current --data-dir .bud # the revision, and the newes",
    ): on_a_store_of_the_last_release(
        bash(
            skip={
                "bud db upgrade --database-url postgresql": "needs PostgreSQL: "
                "tests/integration/test_migrations.py runs the revisions there"
            }
        )
    ),
    ("docs/notifications.md", '{"id": "notify", "action": "notification",'): json_step,
    ("docs/notifications.md", '{"id": "send_alert", "action": "notification",'): json_step,
    (
        "docs/notifications.md",
        '{"message": "...", "title": null, "priority": "normal", "cha',
    ): same_keys_as(_webhook_payload),
    (
        "docs/notifications.md",
        '{"channel": "slack", "delivered": true, "target": "https://h',
    ): same_keys_as(lambda ctx: _notification(ctx, "slack")),
    ("docs/sdk.md", "from bud import BudClient"): python(),
    (
        "docs/sdk.md",
        "BudClient(base_url=None, api_key=None, timeout=30.0, transpo",
    ): python(),
    ("docs/sdk.md", "from starlette.testclient import TestClient"): python(),
    (
        "docs/sdk.md",
        'for trigger in client.event_triggers.list(pipeline_id="pipe_',
    ): python(),
    (
        "docs/sdk.md",
        'execution = client.pipelines.run("pipe_abc123", params={"rep',
    ): python(),
    ("docs/sdk.md", "import bud"): python(
        lambda _ns, out: _assert_eq(out.split()[0], "filter.size.$gt")
    ),
    ("docs/sdk.md", "import httpx"): python(),
    ("docs/triggers.md", "event = client.events.get(event_id)"): python(),
    (
        "docs/triggers.md",
        'result = client.event_triggers.test(trigger_id, {"model_sour',
    ): python(
        lambda ns, _out: _assert_eq(
            (ns["result"].matched, ns["result"].would_fire, bool(ns["result"].warnings)),
            (False, False, True),
        )
    ),
    (
        "docs/triggers.md",
        'client.events.publish("model.added", data, test=True) # bud ',
    ): python(),
    ("docs/triggers.md", "result = client.pipelines.dry_run("): python(),
    (
        "docs/triggers.md",
        "client.event_triggers.backtest(trigger_id) # its type and fi",
    ): python(),
    (
        "docs/triggers.md",
        '{"dedup": {"key": "{{ event.model_id }}", "window_seconds": ',
    ): json_flow,
    (
        "docs/triggers.md",
        "stats = client.event_triggers.stats(trigger_id) # bud trigge",
    ): python(),
    ("docs/triggers.md", "nightly = client.event_triggers.create("): python(
        lambda ns, out: _assert_eq(out.split()[:2], ["schedule", "schedule.tick"])
    ),
    ("docs/triggers.md", 'alert = client.pipelines.create(name="alert on failures", de'): (
        python(lambda ns, _out: _assert_eq(ns["watch"].event_type, "execution.failed"))
    ),
    ("docs/api.md", "hook = client.hooks.create("): python(
        lambda _ns, out: _assert_eq(out.splitlines()[-1], "{'ref': 'refs/heads/main'}")
    ),
    (
        "docs/triggers.md",
        '{"trigger_id": "trig_abc", "fire_count": 42, "last_fired_at"',
    ): same_keys_as(_stats),
    (
        "docs/triggers.md",
        "client.events.replay([event_id]) # to the triggers it had",
    ): python(),
}


def _assert_eq(actual: Any, expected: Any) -> None:
    assert actual == expected


# ---------------------------------------------------------------------------------------------
# The tests


def test_every_example_has_a_runner() -> None:
    found = {(b.doc, b.key) for doc in DOCS for b in blocks(doc)}
    missing = sorted(found - set(EXAMPLES))
    assert not missing, f"examples without a runner (add them to EXAMPLES): {missing}"
    stale = sorted(set(EXAMPLES) - found)
    assert not stale, f"runners for examples that are gone: {stale}"


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    """One demo server for every page (the examples do not depend on each other's leftovers)."""
    tmp_path = tmp_path_factory.mktemp("docs")
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        HttpReceiver() as receiver,
        BudProcess(tmp_path / "bud", args=["--demo"]) as server,
    ):
        monkeypatch.setenv("BUD_URL", server.url)  # BudClient() as the examples write it
        ctx = Context(server, tmp_path, monkeypatch, receiver)
        ctx.names.update(_page_names(ctx))
        yield ctx


def _page_names(ctx: Context) -> dict[str, Any]:
    """What the pages say their examples assume, made real on the demo server."""
    from starlette.testclient import TestClient

    import bud.cli.app
    from bud.server.app import create_app
    from bud.settings import Settings

    client = ctx.client
    data = client.event_types.get("model.added").example
    event = client.events.publish("model.added", data)
    for _ in range(100):
        if client.events.get(event.event_id).executions:
            break
        time.sleep(0.05)
    for event_id in ("evt_1", "evt_2"):  # docs/cli.md replays these ids
        client.events.publish("model.added", data, event_id=event_id)
    (ctx.tmp_path / "event.json").write_text(
        json.dumps({"event_type": "model.added", "data": data})
    )
    app = create_app(Settings(data_dir=ctx.tmp_path / "in-process"))
    test_client = TestClient(app, base_url="http://localhost")
    ctx.monkeypatch.chdir(ctx.tmp_path)
    from typer.testing import CliRunner

    return {
        # docs/triggers.md, docs/sdk.md, docs/cli.md
        "pipeline_id": "pipe_abc123",
        "trigger_id": "trig_xyz789",
        "event_id": event.event_id,
        "data": data,
        # docs/filters.md
        "event": {
            "event_type": "model.added",
            "data": {"model_source": "hugging_face", "auto_deploy": False},
        },
        # in-process examples (docs/sdk.md, docs/cli.md)
        "tmp_path": ctx.tmp_path / "sdk-app",
        "app": app,
        "bud": bud,
        "monkeypatch": ctx.monkeypatch,
        "test_client": test_client,
        "CliRunner": CliRunner,
        "BudClient": BudClient,
    }


@pytest.mark.parametrize("doc", [doc for doc in DOCS if blocks(doc)])
def test_the_examples_of(doc: str, context: Context) -> None:
    for block in blocks(doc):
        EXAMPLES[(block.doc, block.key)](context, block)
