"""Prometheus metrics, one registry per server (no module-level global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "bud_events_ingested_total", "Events accepted", ["event_type"], registry=r
        )
        self.duplicates = Counter(
            "bud_events_duplicate_total", "Events dropped as duplicates", ["event_type"], registry=r
        )
        self.decisions = Counter(
            "bud_trigger_decisions_total",
            "Trigger decisions other than filtered (fired, disabled, suppressed, ...)",
            ["event_type", "trigger_id", "outcome"],
            registry=r,
        )
        self.filtered = Counter(
            "bud_trigger_filtered_total",
            "Candidate triggers whose filter did not match, by event type (per trigger: the "
            "trigger's stats)",
            ["event_type"],
            registry=r,
        )
        self.fired = Counter(
            "bud_trigger_fired_total",
            "Executions started by trigger",
            ["trigger_id", "event_type"],
            registry=r,
        )
        self.started = Counter(
            "bud_executions_started_total",
            "Executions started, by path (ingest, replay, debounce, manual)",
            ["path"],
            registry=r,
        )
        self.executions = Counter(
            "bud_executions_finished_total", "Executions finished", ["status"], registry=r
        )
        self.steps = Counter(
            "bud_step_attempts_total", "Step attempts", ["action", "status"], registry=r
        )
        self.step_seconds = Histogram(
            "bud_step_duration_seconds", "Step attempt duration", ["action"], registry=r
        )
        self.running = Gauge("bud_steps_running", "Steps running in this process", registry=r)
        self.triggers = Gauge("bud_triggers", "Triggers loaded in the matcher", registry=r)
