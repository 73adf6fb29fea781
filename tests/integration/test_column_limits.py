"""Strings longer than a store column keeps are refused with a 4xx on both stores (PostgreSQL's
varchar columns refuse them; SQLite would have kept them): one contract, no 500."""

from __future__ import annotations

from bud import BudClient

LOG = {"steps": [{"id": "a", "action": "log", "params": {"message": "hi"}}]}
L = "x" * 300


def test_values_longer_than_their_column_are_refused(app_client: BudClient) -> None:
    http = app_client._http
    out: list[tuple[str, str, int]] = []
    p = http.post("/v1/pipelines", json={"name": "p", "definition": LOG}).json()
    m = http.post("/v1/models", json={"name": "m", "source": "s"}).json()
    c = http.post("/v1/clusters", json={"name": "c"}).json()
    tr = http.post(
        "/v1/event-triggers", json={"pipeline_id": p["id"], "event_type": "model.added"}
    ).json()
    ev = {"event_type": "model.added", "data": {"model_id": "m"}}
    calls = [
        ("post", "/v1/pipelines", {"name": L, "definition": LOG}),
        ("post", "/v1/pipelines", {"name": "p2", "definition": LOG, "description": L * 10}),
        (
            "post",
            "/v1/event-triggers",
            {"pipeline_id": p["id"], "event_type": "model.added", "name": L},
        ),
        ("post", "/v1/event-triggers", {"pipeline_id": L, "event_type": "model.added"}),
        ("post", "/v1/event-triggers", {"pipeline_id": p["id"], "event_type": L}),
        ("patch", f"/v1/event-triggers/{tr['id']}", {"name": L}),
        ("post", "/v1/event-types", {"name": "team." + "a" * 200}),
        ("post", "/v1/models", {"name": L, "source": L}),
        ("post", "/v1/models", {"name": "m", "source": "s", "created_by": L}),
        ("patch", f"/v1/models/{m['id']}", {"changes": {"model_name": L}}),
        ("patch", f"/v1/models/{m['id']}", {"changes": {"source": 5}}),
        ("post", "/v1/clusters", {"name": L, "environment": L}),
        ("patch", f"/v1/clusters/{c['id']}", {"name": L}),
        ("post", "/v1/deployments", {"model_id": L, "cluster_id": c["id"], "deployment_name": "d"}),
        (
            "post",
            "/v1/deployments",
            {"model_id": m["id"], "cluster_id": c["id"], "deployment_name": L},
        ),
        ("post", "/v1/events", {**ev, "source": "s" * 129}),
        ("post", "/v1/events", {**ev, "event_id": "e" * 129}),
        ("post", "/v1/events", {**ev, "correlation_id": "e" * 300}),
        ("post", "/v1/events", {**ev, "causation_id": "e" * 300}),
        ("post", "/v1/events", {**ev, "timestamp": "2024-01-01T00:00:00." + "0" * 100 + "Z"}),
        ("post", f"/v1/pipelines/{p['id']}/run", {"event": {**ev, "correlation_id": L}}),
        ("post", f"/v1/pipelines/{p['id']}/run", {"params": {"a": L * 100}}),
        ("put", "/v1/secrets/" + "a" * 129, {"value": "v"}),
        ("put", "/v1/channels/" + "a" * 129, {"url": "https://example.com"}),
        ("get", "/v1/pipelines/" + "p" * 300, None),
        ("get", "/v1/events?event_type=" + "p" * 300, None),
        ("get", "/v1/executions?pipeline_id=" + "p" * 300, None),
        ("post", "/v1/events/replay", {"event_ids": ["e" * 300]}),
        ("post", "/v1/events/replay", {"event_type": "model.added", "trigger_id": L}),
        ("post", f"/v1/event-triggers/{tr['id']}/test", {"event": {**ev, "source": L}}),
        ("post", "/v1/event-triggers/backtest", {"event_type": L}),
    ]
    for mth, path, body in calls:
        r = http.request(mth, path, json=body) if body is not None else http.request(mth, path)
        out.append((mth, f"{path[:40]} {str(body)[:60]}", r.status_code))
    assert not [o for o in out if o[2] >= 500], out
    accepted = [o[1] for o in out if o[2] < 400]
    assert len(accepted) == 4, accepted  # a long description, long run params, two list filters
