"""The web UI as the operator's console (docs/ui.md), in Chromium against a real ``bud serve``.

Live pages follow the server's stream instead of polling; the trigger form is checked,
tested and backtested before anything is saved; executions are run with params, cancelled
and retried (from a step) after a confirmation; events are searched, replayed one by one
or in bulk; refused publishes are listed; every page fits a 390 px phone; /docs works with
no internet.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.e2e.browser import *  # noqa: F403 - the fixtures: server, client, browser, page, receiver
from tests.e2e.browser import PHONE, screenshot, unique, wait_for
from tests.support import BudProcess

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

LOG = {"id": "a", "action": "log", "params": {"message": "start {{ params.n | default(1) }}"}}


def chain(delay: float) -> dict[str, Any]:
    return {
        "steps": [
            LOG,
            {"id": "wait", "action": "delay", "params": {"seconds": delay}, "depends_on": ["a"]},
            {"id": "b", "action": "log", "params": {"message": "b"}, "depends_on": ["wait"]},
        ]
    }


def api_gets(pg: Any, pattern: str) -> list[str]:
    """Collect the URLs of GET requests matching ``pattern`` (a regex) made by the page."""
    seen: list[str] = []
    rx = re.compile(pattern)
    pg.on(
        "request", lambda r: seen.append(r.url) if r.method == "GET" and rx.search(r.url) else None
    )
    return seen


# ---------------------------------------------------------------------------------------------
# 1. Live updates, pushed


def test_a_live_execution_updates_without_reload_or_polling(page: Any, client: Any) -> None:
    from playwright.sync_api import expect

    pipeline = client.pipelines.create(name=unique("Live"), definition=chain(3))
    execution = client.pipelines.run(pipeline.id)
    reads = api_gets(page, rf"/v1/executions/{execution.id}(/attempts)?$")
    streams = api_gets(page, r"/v1/stream\?")
    page.goto(f"/#/executions/{execution.id}")
    page.evaluate("window.__samePage = true")
    wait = page.locator('details.step[data-step-id="wait"]')
    expect(wait).to_have_attribute("data-status", "running")
    expect(page.locator(".live-badge")).to_have_attribute("data-state", "live")
    # A running step opens by itself; its duration ticks in place.
    expect(wait).to_have_attribute("open", "")
    ticking = page.locator(".exec-duration .duration")
    first = ticking.inner_text()
    expect(ticking).not_to_have_text(first)
    expect(page.locator('.gantt-row[data-step-id="a"] .gantt-bar')).to_have_count(1)
    expect(wait.locator(".running-note")).to_contain_text("running for")
    expect(
        page.locator('.gantt-row[data-step-id="wait"] .gantt-bar[data-status="running"]')
    ).to_have_count(1)

    status = page.locator(".status-host")
    expect(status).to_have_attribute("data-status", "succeeded", timeout=15_000)
    expect(page.locator('svg.dag [data-step-id="b"]')).to_have_attribute("data-status", "succeeded")
    for step_id in ("a", "wait", "b"):
        expect(
            page.locator(
                f'.gantt-row[data-step-id="{step_id}"] .gantt-bar[data-status="succeeded"]'
            )
        ).to_have_count(1)
    # The same document all along, one read of each resource, and the rest pushed.
    assert page.evaluate("window.__samePage") is True
    assert len(reads) == 2, reads
    assert len(streams) == 1, streams
    # Per-attempt durations: the delay step's attempt took about its 3 s, not the page's age.
    took = wait.locator('tr[data-attempt="1"] .duration').inner_text()
    assert took.endswith(" s") and 2.5 <= float(took.split()[0]) < 10, took


def test_a_running_attempt_shows_its_params_and_log_lines(page: Any, client: Any) -> None:
    """The attempt recorded when a step starts (rendered params, growing logs) is shown.

    The stream is answered here with the shape the API gives for a running attempt
    (docs/api.md), so the page's handling of it is checked whatever the engine's timing.
    """
    from playwright.sync_api import expect

    pipeline = client.pipelines.create(name=unique("Attempt"), definition=chain(0.1))
    real = client.executions.wait(client.pipelines.run(pipeline.id).id, timeout=15)
    shown = client.request("GET", f"/v1/executions/{real.id}")
    started = shown["steps"][1]["started_at"] or shown["created_at"]
    shown["status"] = "running"
    shown["finished_at"] = None
    shown["retry_count"] = 1
    shown["steps"][1].update(
        status="running", params=None, outputs=None, logs=None, finished_at=None, attempts=2
    )
    shown["steps"][2].update(status="pending", started_at=None, finished_at=None, attempts=0)

    def attempt(n: int, status: str, logs: list[dict[str, str]]) -> dict[str, Any]:
        return {
            "execution_id": real.id,
            "step_id": "wait",
            "attempt": n,
            "status": status,
            "params": {"seconds": 0.1, "token": "******"},
            "outputs": None,
            "logs": logs,
            "error": "boom" if status == "failed" else None,
            "started_at": started,
            "finished_at": started if status == "failed" else None,
        }

    frames = []
    for lines in (["waiting 0.1 s"], ["waiting 0.1 s", "still waiting"]):
        data = {
            "execution": shown,
            "attempts": [
                attempt(1, "failed", []),
                attempt(2, "running", [{"level": "info", "message": m} for m in lines]),
            ],
            "now": shown["created_at"],
        }
        frames.append(f"event: execution\ndata: {json.dumps(data)}\n\n")
    served = iter(frames)

    def stream(route: Any) -> None:
        route.fulfill(
            status=200,
            headers={"Content-Type": "text/event-stream"},
            body="retry: 1000\n\n" + next(served, frames[-1]),
        )

    page.route(re.compile(r"/v1/stream\?"), stream)
    page.goto(f"/#/executions/{real.id}")
    wait = page.locator('details.step[data-step-id="wait"]')
    expect(wait).to_have_attribute("data-status", "running")
    expect(wait.locator(".running-note")).to_contain_text("Attempt 2 running for")
    expect(wait).to_contain_text('"token": "******"')
    expect(wait.locator(".logs")).to_contain_text("still waiting")
    expect(wait.locator('tr[data-attempt="2"]')).to_have_attribute("data-status", "running")
    expect(wait.locator('tr[data-attempt="1"]')).to_contain_text("boom")
    expect(wait.locator("summary")).to_contain_text("2 attempts")
    expect(page.locator('.marks [data-mark="retried"]')).to_have_text("retried 1×")
    expect(page.locator('.gantt-row[data-step-id="wait"] .gantt-bar')).to_have_count(2)


def test_the_executions_list_and_the_event_log_receive_new_rows(page: Any, client: Any) -> None:
    from playwright.sync_api import expect

    pipeline = client.pipelines.create(name=unique("Listed"), definition={"steps": [LOG]})
    page.goto(f"/#/executions?pipeline_id={pipeline.id}")
    expect(page.locator(".live-badge")).to_have_attribute("data-state", "live")
    execution = client.pipelines.run(pipeline.id)
    row = page.locator(f'tr[data-execution-id="{execution.id}"]')
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-status", "succeeded", timeout=15_000)

    source = unique("log")
    page.goto(f"/#/events?source={source}")
    expect(page.locator(".live-badge")).to_have_attribute("data-state", "live")
    event = client.events.publish("model.added", {"model_id": "m-live"}, source=source)
    expect(page.locator(f'tr[data-event-id="{event.event_id}"]')).to_be_visible()


# ---------------------------------------------------------------------------------------------
# 3. Acting: run with params, cancel and retry with confirmation, retry from a step, replay


def test_run_now_with_params_checks_the_json_first(page: Any, client: Any) -> None:
    from playwright.sync_api import expect

    name = unique("Run")
    pipeline = client.pipelines.create(name=name, definition={"steps": [LOG]})
    page.goto(f"/#/pipelines/{pipeline.id}/steps")
    page.get_by_role("button", name="Run now").click()
    params = page.get_by_label("Params", exact=True)
    params.fill('{"n": ')
    expect(page.locator("#run-params-error")).to_contain_text("not valid JSON")
    page.get_by_role("button", name="Start run").click()
    assert list(client.executions.list(pipeline_id=pipeline.id)) == []
    params.fill('{"n": 7}')
    page.get_by_label("Event type", exact=True).select_option("model.added")
    data = page.get_by_label("Event data")
    assert json.loads(data.input_value())["model_id"]  # the type's example
    page.get_by_role("button", name="Start run").click()
    expect(page.locator(".status-host")).to_have_attribute("data-status", "succeeded")
    [run] = list(client.executions.list(pipeline_id=pipeline.id))
    assert run.params == {"n": 7} and run.origin == "manual"


def test_cancel_and_retry_ask_first_and_retry_from_a_step(page: Any, client: Any) -> None:
    from playwright.sync_api import expect

    pipeline = client.pipelines.create(name=unique("Act"), definition=chain(30))
    execution = client.pipelines.run(pipeline.id)
    page.goto(f"/#/executions/{execution.id}")
    expect(page.locator('details.step[data-step-id="wait"]')).to_have_attribute(
        "data-status", "running"
    )
    page.get_by_role("button", name="Cancel", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Cancel execution {execution.id}?")
    dialog.get_by_role("button", name="Back").click()
    expect(dialog).to_have_count(0)
    assert client.executions.get(execution.id).status == "running"

    page.get_by_role("button", name="Cancel", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel execution").click()
    expect(page.locator(".status-host")).to_have_attribute("data-status", "cancelled")
    assert client.executions.get(execution.id).status == "cancelled"

    # Retry from the first step would run every step again; a plain retry runs the cancelled ones.
    page.locator('svg.dag [data-step-id="a"]').click()
    page.get_by_role("button", name="Retry from step a").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("a, wait, b")
    dialog.get_by_role("button", name="Back").click()
    page.get_by_role("button", name="Retry", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("wait")
    dialog.get_by_role("button", name="Retry execution").click()
    expect(page.locator(".status-host")).to_have_attribute("data-status", "running")
    page.get_by_role("button", name="Cancel", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel execution").click()
    expect(page.locator(".status-host")).to_have_attribute("data-status", "cancelled")
    steps = {st.step_id: st for st in client.executions.get(execution.id).steps or []}
    assert steps["wait"].attempts == 2 and steps["wait"].status == "cancelled"


def test_retry_from_a_chosen_step_reruns_it_and_what_follows(page: Any, client: Any) -> None:
    from playwright.sync_api import expect

    pipeline = client.pipelines.create(name=unique("From"), definition=chain(0.1))
    execution = client.executions.wait(client.pipelines.run(pipeline.id).id, timeout=15)
    page.goto(f"/#/executions/{execution.id}")
    expect(page.locator(".status-host")).to_have_attribute("data-status", "succeeded")
    page.locator('svg.dag [data-step-id="wait"]').click()
    page.get_by_role("button", name="Retry from step wait").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("wait, b")
    dialog.get_by_role("button", name="Retry from this step").click()
    wait_for(
        lambda: [a.step_id for a in client.executions.attempts(execution.id)],
        lambda steps: steps.count("b") == 2,
        timeout=15,
        what="b to run again",
    )
    expect(page.locator(".status-host")).to_have_attribute("data-status", "succeeded")
    expect(page.locator('details.step[data-step-id="b"] summary')).to_contain_text("2 attempts")
    steps = [a.step_id for a in client.executions.attempts(execution.id)]
    assert sorted(steps) == ["a", "b", "b", "wait", "wait"]


def test_a_replay_from_the_event_page_starts_an_execution(page: Any, client: Any) -> None:
    from playwright.sync_api import expect

    source = unique("replay")
    pipeline = client.pipelines.create(name=unique("Backfill"), definition={"steps": [LOG]})
    event = client.events.publish(
        "model.added", {"model_id": "m-r", "model_name": "R", "model_source": source}
    )
    # The trigger comes after the event: replaying the event to it is a backfill.
    trigger = client.event_triggers.create(
        pipeline_id=pipeline.id,
        event_type="model.added",
        name="Late trigger",
        filter={"model_source": source},
    )
    page.goto(f"/#/events/{event.event_id}")
    page.get_by_role("button", name="Replay", exact=True).click()
    page.get_by_label("Deliver to").select_option(trigger.id)
    page.get_by_role("button", name="Replay now").click()
    result = page.locator(".replay-result")
    expect(result).to_have_attribute("data-fired", "1")
    [execution] = list(client.executions.list(event_id=event.event_id))
    assert execution.trigger_id == trigger.id
    result.get_by_role("link", name=execution.id).click()
    expect(page.get_by_role("heading", name=f"Execution {execution.id}")).to_be_visible()
    expect(page.locator(".status-host")).to_have_attribute("data-status", "succeeded")

    # Its decision names the trigger.
    page.goto(f"/#/events/{event.event_id}")
    decision = page.locator(f'.decision[data-trigger-id="{trigger.id}"]')
    expect(decision.first).to_contain_text("Late trigger")


def test_bulk_replay_by_type_and_time_range(page: Any, client: Any) -> None:
    from playwright.sync_api import expect

    source = unique("bulk")
    pipeline = client.pipelines.create(name=unique("Bulk"), definition={"steps": [LOG]})
    for i in range(2):
        client.events.publish("model.updated", {"model_id": f"m-{i}", "model_source": source})
    trigger = client.event_triggers.create(
        pipeline_id=pipeline.id, event_type="model.updated", filter={"model_source": source}
    )
    page.goto("/#/events")
    page.get_by_role("button", name="Replay events…").click()
    page.get_by_label("Event type", exact=True).select_option("model.updated")
    expect(page.locator("#replay-trigger option", has_text=trigger.id)).to_have_count(1)
    page.get_by_label("Deliver to").select_option(trigger.id)
    page.get_by_label(re.compile("Received from")).fill("2000-01-01T00:00:00")
    page.get_by_role("button", name="Replay events", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("model.updated")
    dialog.get_by_role("button", name="Replay events").click()
    expect(page.locator(".replay-result")).to_have_attribute("data-fired", "2")
    assert len(list(client.executions.list(trigger_id=trigger.id))) == 2


def test_a_cluster_status_change_asks_first(page: Any, client: Any) -> None:
    from playwright.sync_api import expect

    cluster_id = unique("cluster").replace("-", "_")
    client.clusters.create(name="Confirm me", id=cluster_id, status="provisioning")
    page.goto("/#/platform")
    menu = page.get_by_label(f"Set status of {cluster_id}")
    menu.select_option("ready")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("publishes cluster.ready")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(menu).to_have_value("provisioning")
    assert client.clusters.get(cluster_id).status == "provisioning"
    menu.select_option("ready")
    page.get_by_role("dialog").get_by_role("button", name="Set to ready").click()
    expect(page.locator(f'tr[data-cluster-id="{cluster_id}"]')).to_have_attribute(
        "data-status", "ready"
    )
    assert client.clusters.get(cluster_id).status == "ready"


# ---------------------------------------------------------------------------------------------
# 4 and 5. The trigger form before Save, and the trigger's statistics


def test_a_trigger_is_tested_and_backtested_before_it_is_saved(page: Any, client: Any) -> None:
    from playwright.sync_api import expect

    source = unique("bt")
    name = unique("Before save")
    steps = [{"id": "say", "action": "log", "params": {"message": "{{ event.region }}"}}]
    pipeline = client.pipelines.create(name=name, definition={"steps": steps})
    for i, deploy in enumerate((True, False, True)):
        client.events.publish(
            "model.added",
            {"model_id": f"bt-{i}", "model_source": source, "auto_deploy": deploy},
        )
    page.goto(f"/#/pipelines/{pipeline.id}/triggers")
    page.get_by_role("button", name="Add Event Trigger").click()
    page.get_by_label("Name", exact=True).fill("Backtested")
    page.get_by_label("Event Type").select_option("model.added")
    # The event type's fields are offered; one click adds a clause.
    page.locator('.chip[data-field="model_source"]').click()
    box = page.get_by_label("Filter", exact=True)
    assert "model_source" in json.loads(box.input_value())
    # The template warning shows before Save.
    expect(page.locator("#trigger-warnings")).to_contain_text("event.region")

    # Every error at once, each at its field, and nothing saved.
    box.fill('{"model_source": {"$bogus": 1}}')
    page.get_by_text("Flow control (optional)").click()
    page.get_by_label("Flow control", exact=True).fill(
        '{"rate_limit": {"max": 0, "per_seconds": 1}}'
    )
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#trigger-filter-error")).to_contain_text("filter.model_source.$bogus")
    expect(page.locator("#trigger-flow-error")).to_contain_text("flow.rate_limit.max")
    assert list(client.event_triggers.list(pipeline_id=pipeline.id)) == []
    page.get_by_label("Flow control", exact=True).fill("")

    box.fill(json.dumps({"model_source": source, "auto_deploy": True}))
    expect(page.locator("#trigger-filter-error")).to_be_hidden()
    sample = page.get_by_label("Sample event")
    sample.fill(
        json.dumps({"data": {"model_id": "x", "model_source": source, "auto_deploy": False}})
    )
    page.get_by_role("button", name="Test the unsaved trigger").click()
    answer = page.locator("#trigger-try-result .test-answer")
    expect(answer).to_have_attribute("data-matched", "false")
    expect(page.locator("#trigger-try-result")).to_contain_text("data.auto_deploy")
    page.get_by_role("button", name="Backtest the unsaved filter").click()
    backtest = page.locator("#trigger-try-result .backtest")
    expect(backtest).to_have_attribute("data-matched", "2")
    expect(backtest).to_contain_text("Near misses")
    assert list(client.event_triggers.list(pipeline_id=pipeline.id)) == []
    screenshot(page, "trigger-form")

    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("tr[data-trigger-id]")).to_have_count(1)
    [trigger] = list(client.event_triggers.list(pipeline_id=pipeline.id))
    assert trigger.name == "Backtested"
    assert trigger.filter == {"model_source": source, "auto_deploy": True}


def test_a_trigger_shows_its_statistics_and_filtered_out_events(page: Any, client: Any) -> None:
    from playwright.sync_api import expect

    source = unique("stats")
    name = unique("Stats")
    pipeline = client.pipelines.create(name=name, definition={"steps": [LOG]})
    trigger = client.event_triggers.create(
        pipeline_id=pipeline.id, event_type="model.added", filter={"model_source": source}
    )
    client.events.publish("model.added", {"model_id": "s1", "model_source": source})
    missed = client.events.publish("model.added", {"model_id": "s2", "model_source": "other"})
    wait_for(lambda: list(client.executions.list(trigger_id=trigger.id)), bool, what="an execution")
    page.goto(f"/#/pipelines/{pipeline.id}/triggers")
    page.get_by_role("button", name=f"Statistics of trigger {trigger.id}").click()
    panel = page.locator(f'.stats-panel[data-trigger-id="{trigger.id}"]')
    expect(panel.locator('[data-stat="fired"] dd')).to_have_text("1")
    expect(panel.locator("svg.rate-chart .rate-bar")).to_have_count(24)
    expect(panel.locator('svg.rate-chart .rate-bar[data-count="1"]')).to_have_count(1)
    panel.get_by_role("link", name=missed.event_id).click()
    expect(page.locator(f'.decision[data-trigger-id="{trigger.id}"]')).to_have_attribute(
        "data-outcome", "filtered"
    )


# ---------------------------------------------------------------------------------------------
# 6. The event log: payload search, "started nothing", refused publishes


def test_the_event_log_searches_payloads_and_lists_refused_publishes(
    page: Any, client: Any
) -> None:
    from playwright.sync_api import expect

    source = unique("find")
    pipeline = client.pipelines.create(name=unique("Find"), definition={"steps": [LOG]})
    client.event_triggers.create(
        pipeline_id=pipeline.id, event_type="model.added", filter={"model_source": source}
    )
    hit = client.events.publish(
        "model.added", {"model_id": "f1", "model_source": source}, source=source
    )
    idle = client.events.publish(
        "model.added", {"model_id": "f2", "model_source": source + "-x", "size": 3}, source=source
    )
    refused = unique("refused")
    with pytest.raises(Exception, match="unknown event type"):
        client.request("POST", "/v1/events", json={"event_type": refused, "source": source})

    page.goto("/#/events")
    page.get_by_label("Payload path").fill("model_source")
    page.get_by_label("Payload value").fill(source)
    expect(page.locator("tr[data-event-id]")).to_have_count(1)
    expect(page.locator(f'tr[data-event-id="{hit.event_id}"]')).to_be_visible()
    page.get_by_label("Payload path").fill("size")
    page.get_by_label("Payload value").fill("3")
    expect(page.locator("tr[data-event-id]")).to_have_count(1)
    expect(page.locator(f'tr[data-event-id="{idle.event_id}"]')).to_be_visible()
    assert "data_path=size" in page.url  # the search is in the URL, so it can be shared

    page.get_by_label("Payload path").fill("")
    page.get_by_label("Filter by source").fill(source)
    page.get_by_label("Started", exact=True).select_option("true")
    expect(page.locator("tr[data-event-id]")).to_have_count(1)
    expect(page.locator(f'tr[data-event-id="{hit.event_id}"]')).to_have_count(0)

    page.get_by_text("Refused publishes").click()
    row = page.locator("tr[data-ingest-error]").filter(has_text=refused)
    expect(row).to_contain_text("unknown event type")
    expect(row).to_contain_text(source)


# ---------------------------------------------------------------------------------------------
# 7 and 8. Phones, and /docs offline


def test_every_page_fits_a_phone(browser: Any, server: BudProcess, client: Any) -> None:
    from playwright.sync_api import expect

    pipeline = client.pipelines.create(name=unique("Phone"), definition=chain(0.1))
    trigger = client.event_triggers.create(
        pipeline_id=pipeline.id,
        event_type="model.added",
        filter={"model_source": "a-rather-long-source-name-that-used-to-wrap-one-letter-a-line"},
        flow={"rate_limit": {"max": 5, "per_seconds": 60}},
    )
    execution = client.executions.wait(client.pipelines.run(pipeline.id).id, timeout=15)
    event = client.events.publish("model.added", {"model_id": "phone", "model_source": "s3"})
    context = browser.new_context(base_url=server.url, viewport=PHONE, is_mobile=True)
    try:
        pg = context.new_page()
        pages = [
            "/#/pipelines",
            *(f"/#/pipelines/{pipeline.id}/{tab}" for tab in ("steps", "triggers", "executions")),
            f"/#/pipelines/{pipeline.id}/definition",
            "/#/executions",
            f"/#/executions/{execution.id}",
            "/#/events",
            f"/#/events/{event.event_id}",
            "/#/platform",
        ]
        for path in pages:
            pg.goto(path)
            expect(pg.locator("main h1")).to_be_visible()
            width = pg.evaluate("document.documentElement.scrollWidth")
            assert width == PHONE["width"], (path, width)
        # Open panels too: the trigger's statistics and test, the add form.
        pg.goto(f"/#/pipelines/{pipeline.id}/triggers")
        pg.get_by_role("button", name=f"Statistics of trigger {trigger.id}").click()
        expect(pg.locator(".stats-panel svg.rate-chart")).to_be_visible()
        pg.get_by_role("button", name=f"Test trigger {trigger.id}").click()
        pg.get_by_role("button", name="Run test").click()
        expect(pg.locator(".test-answer")).to_be_visible()
        assert pg.evaluate("document.documentElement.scrollWidth") == PHONE["width"]
        filter_cell = pg.locator(f'tr[data-trigger-id="{trigger.id}"] .filter-cell code').first
        assert filter_cell.evaluate("el => el.getBoundingClientRect().width") > 150
        pg.get_by_role("button", name="Add Event Trigger").click()
        expect(pg.get_by_label("Sample event")).to_be_visible()
        assert pg.evaluate("document.documentElement.scrollWidth") == PHONE["width"]
        pg.goto(f"/#/executions/{execution.id}")
        expect(pg.locator(".status-host")).to_have_attribute("data-status", "succeeded")
        screenshot(pg, "phone-execution")
    finally:
        context.close()


def test_the_api_docs_render_without_internet(browser: Any, server: BudProcess) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(base_url=server.url)
    outside: list[str] = []

    def only_this_server(route: Any) -> None:
        if route.request.url.startswith(server.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_this_server)
    try:
        pg = context.new_page()
        pg.goto("/docs")
        expect(pg.locator(".swagger-ui .info .title")).to_contain_text("Bud Pipelines")
        expect(pg.locator(".opblock-tag-section").first).to_be_visible()
        assert outside == []  # Swagger UI asked for nothing outside the server
        # ReDoc renders too; only its "powered by" badge image points outside, and is blocked.
        pg.goto("/redoc")
        expect(pg.locator("h1").first).to_contain_text("Bud Pipelines", timeout=15_000)
    finally:
        context.close()
