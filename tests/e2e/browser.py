"""What the browser tests share: one ``bud serve`` and one Chromium per test module, a fresh
browser context per test, waiting helpers, the label check and the docs screenshots.

The fixtures are exported for ``from tests.e2e.browser import *`` in each browser test module.
"""

from __future__ import annotations

import copy
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bud.cli.demo import DEMO_PIPELINES
from tests.support import BudProcess, HttpReceiver, need

try:
    from bud import BudClient
except ImportError:  # pragma: no cover - the SDK lands in parallel
    BudClient = None  # type: ignore[assignment,misc]

__all__ = ["browser", "client", "page", "receiver", "server"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# Screenshots for docs/ui.md are written only on request, so a test run leaves the work tree
# clean: BUD_SCREENSHOTS=1 ./scripts/test -m browser tests/e2e  (see docs/ui.md).
WRITE_SCREENSHOTS = os.environ.get("BUD_SCREENSHOTS") == "1"

T = TypeVar("T")

AUTO_DEPLOY_STEPS: list[dict[str, Any]] = copy.deepcopy(DEMO_PIPELINES[0]["definition"]["steps"])
PHONE = {"width": 390, "height": 844}


def wait_for(
    fetch: Callable[[], T], ok: Callable[[T], bool], timeout: float = 10.0, what: str = "condition"
) -> T:
    deadline = time.monotonic() + timeout
    value = fetch()
    while not ok(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: last value {value!r}")
        time.sleep(0.1)
        value = fetch()
    return value


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------------------------------------
# Fixtures: one server, one browser for the module; a fresh browser context per test.


@pytest.fixture(scope="module")
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as r:
        yield r


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, receiver: HttpReceiver
) -> Iterator[BudProcess]:
    # The console shows running steps: their long delays sleep in their slot here.
    env = {"BUD_SLACK_WEBHOOK_URL": f"{receiver.url}/slack", "BUD_DURABLE_DELAY_SECONDS": "3600"}
    with BudProcess(tmp_path_factory.mktemp("ui") / "bud", env=env) as proc:
        yield proc


@pytest.fixture(scope="module")
def client(server: BudProcess) -> Iterator[Any]:
    assert BudClient is not None, "bud.BudClient is not importable"
    with BudClient(base_url=server.url) as c:
        c.clusters.create(name="Production", id="cluster_prod", environment="production")
        yield c


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need(CHROMIUM.exists(), "Chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, server: BudProcess) -> Iterator[Any]:
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 860})
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield pg
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def screenshot(pg: Any, name: str) -> None:
    """A full-page screenshot for the docs (only with BUD_SCREENSHOTS=1), without the toast."""
    if not WRITE_SCREENSHOTS:
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # A sticky bar would be painted mid-page in a full-page capture: pin it to the top.
    pg.evaluate("""() => {
        document.getElementById('toast').classList.remove('show');
        document.querySelector('.topbar').style.position = 'static';
        window.scrollTo({top: 0, behavior: 'instant'});
    }""")
    pg.wait_for_timeout(250)
    pg.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def assert_labelled(pg: Any) -> None:
    """Every visible form control has a label bound to it (so get_by_label finds it)."""
    unlabelled = pg.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter((el) => el.offsetParent !== null && el.labels.length === 0)
            .map((el) => el.outerHTML.slice(0, 80))"""
    )
    assert unlabelled == [], unlabelled


def open_triggers_tab(pg: Any, pipeline_name: str) -> None:
    pg.goto("/#/pipelines")
    pg.get_by_role("link", name=pipeline_name, exact=True).click()  # 1. Open your pipeline
    pg.get_by_role("tab", name="Triggers").click()  # 2. Go to the Triggers tab
    expect_selected(pg, "Triggers")


def expect_selected(pg: Any, tab: str) -> None:
    from playwright.sync_api import expect

    expect(pg.get_by_role("tab", name=tab)).to_have_attribute("aria-selected", "true")
