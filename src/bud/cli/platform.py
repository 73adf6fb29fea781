"""The built-in platform: ``bud models``, ``bud clusters``, ``bud deployments`` and
``bud monitors``."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Annotated

import typer
from rich.text import Text

from bud.cli import render
from bud.cli.common import (
    IdArg,
    JsonFlag,
    LimitOpt,
    client_for,
    deleted,
    fetch,
    given,
    group,
    key_values,
    printed_json,
    say,
    show,
    take,
)
from bud.client import BudClient
from bud.errors import BudError
from bud.schemas import Event, Execution, Model

models_app = group("models", "Models in the built-in platform (adding one emits model.added).")
clusters_app = group("clusters", "Clusters in the built-in platform.")
deployments_app = group("deployments", "Deployments in the built-in platform.")
monitors_app = group("monitors", "Monitoring configured for deployments (monitoring_configure).")

# ---------------------------------------------------------------------------------------------
# Models


@models_app.command("add")
def add_model(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="e.g. Llama-3.2-1B.")],
    source: Annotated[str, typer.Option(help="e.g. hugging_face.")],
    uri: Annotated[str | None, typer.Option(help="Where the model lives.")] = None,
    meta: Annotated[
        list[str] | None,
        typer.Option(
            "--meta",
            "-m",
            help="Metadata key=value, value parsed as JSON when it can be "
            "(auto_deploy=true is a boolean); repeatable.",
        ),
    ] = None,
    created_by: Annotated[str | None, typer.Option("--created-by", help="Who added it.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a model: emits model.added, then shows the executions it started."""
    metadata = key_values(meta, "--meta") | given(created_by=created_by)
    with client_for(ctx) as client:
        model = client.models.add(name, source, uri=uri, **metadata)
        if as_json:
            render.print_json(model)
            return
        say(
            Text(f"Added model {model.id} ", style="green")
            + Text(f"({model.name}, {model.source})")
        )
        _show_started(client, model)


def _show_started(client: BudClient, model: Model, wait: float = 2.0) -> None:
    """Print the executions the model's model.added event started (waits up to ``wait`` s)."""
    try:
        event, executions = _started_by(client, model, wait)
    except BudError as exc:  # the model exists: a failed look-up must not look like a failure
        say(f"(could not look up its model.added event: {exc.message})", "dim")
        return
    if event is None:
        say(
            "Its model.added event is not recorded yet: see bud events list --type model.added",
            "dim",
        )
        return
    if not executions:
        say(
            f"Event {event.event_id} (model.added) started no execution; "
            f"why: bud events show {event.event_id}",
            "yellow",
        )
        return
    say(f"Event {event.event_id} (model.added) started {len(executions)} execution(s):")
    names: dict[str, str] = {}
    for x in executions:
        if x.pipeline_id not in names:
            names[x.pipeline_id] = _pipeline_name(client, x.pipeline_id)
        say(
            Text(f"  {x.id}  ")
            + Text(names[x.pipeline_id], style="bold")
            + Text("  ")
            + render.status(x.status)
        )
    say(f"Watch it: bud executions watch {executions[0].id}", "cyan")


def _pipeline_name(client: BudClient, pipeline_id: str) -> str:
    try:
        return client.pipelines.get(pipeline_id).name
    except BudError:
        return pipeline_id


def _started_by(
    client: BudClient, model: Model, wait: float
) -> tuple[Event | None, list[Execution]]:
    """The model.added event for ``model`` and the executions it started, polling briefly."""
    deadline = time.monotonic() + wait
    since = _minus(model.created_at, seconds=60)
    found: Event | None = None
    while True:
        if found is None:
            for candidate in islice(client.events.list(event_type="model.added", since=since), 500):
                if candidate.data.get("model_id") == model.id:
                    found = candidate
                    break
        if found is not None:
            found = client.events.get(found.event_id)
            if found.executions:
                return found, [client.executions.get(x) for x in found.executions]
            decisions = found.decisions or []
            # Every candidate decided and none fired: nothing more will start.
            if found.candidate_count == 0 or (
                decisions and all(d.outcome != "fired" for d in decisions)
            ):
                return found, []
        if time.monotonic() >= deadline:
            return found, []
        time.sleep(0.2)


def _minus(stamp: str | None, seconds: float) -> str | None:
    """An ISO timestamp ``seconds`` earlier (None when it does not parse)."""
    if not stamp:
        return None
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = (moment - timedelta(seconds=seconds)).astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@models_app.command("list")
def list_models(ctx: typer.Context, as_json: JsonFlag = False, limit: LimitOpt = 0) -> None:
    """List models."""
    models = fetch(ctx, lambda client: take(client.models.list(), limit))
    show(models, as_json, render.models_table)


@models_app.command("show")
def show_model(ctx: typer.Context, model_id: IdArg, as_json: JsonFlag = False) -> None:
    """Show a model."""
    model = fetch(ctx, lambda client: client.models.get(model_id))
    show(model, as_json, lambda m: render.models_table([m]))


@models_app.command("update")
def update_model(
    ctx: typer.Context,
    model_id: IdArg,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            "-s",
            help="key=value to change (value parsed as JSON when it can be); repeatable.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a model: emits model.updated."""
    changes = key_values(set_, "--set")
    if not changes:
        raise typer.BadParameter("nothing to change: give --set key=value")
    model = fetch(ctx, lambda client: client.models.update(model_id, **changes))
    if not printed_json(as_json, model):
        say(f"Updated model {model.id}", "green")


@models_app.command("delete")
def delete_model(ctx: typer.Context, model_id: IdArg) -> None:
    """Delete a model."""
    fetch(ctx, lambda client: client.models.delete(model_id))
    deleted(f"model {model_id}")


# ---------------------------------------------------------------------------------------------
# Clusters


@clusters_app.command("create")
def create_cluster(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="e.g. Production.")],
    cluster_id: Annotated[str | None, typer.Option("--id", help="e.g. cluster_prod.")] = None,
    environment: Annotated[str | None, typer.Option(help="e.g. production.")] = None,
    status: Annotated[str, typer.Option(help="ready or unhealthy.")] = "ready",
    health_url: Annotated[
        str | None, typer.Option("--health-url", help="Probed for health.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a cluster."""
    cluster = fetch(
        ctx,
        lambda client: client.clusters.create(
            name, id=cluster_id, environment=environment, status=status, health_url=health_url
        ),
    )
    if printed_json(as_json, cluster):
        return
    say(
        Text(f"Created cluster {cluster.id} ", style="green")
        + Text(f"({cluster.name}, {cluster.status})")
    )


@clusters_app.command("list")
def list_clusters(ctx: typer.Context, as_json: JsonFlag = False, limit: LimitOpt = 0) -> None:
    """List clusters."""
    clusters = fetch(ctx, lambda client: take(client.clusters.list(), limit))
    show(clusters, as_json, render.clusters_table)


@clusters_app.command("show")
def show_cluster(ctx: typer.Context, cluster_id: IdArg, as_json: JsonFlag = False) -> None:
    """Show a cluster."""
    cluster = fetch(ctx, lambda client: client.clusters.get(cluster_id))
    show(cluster, as_json, lambda c: render.clusters_table([c]))


@clusters_app.command("update")
def update_cluster(
    ctx: typer.Context,
    cluster_id: IdArg,
    status: Annotated[
        str | None, typer.Option(help="ready or unhealthy (emits cluster.*).")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why the status changed.")] = None,
    name: Annotated[str | None, typer.Option()] = None,
    environment: Annotated[str | None, typer.Option()] = None,
    health_url: Annotated[str | None, typer.Option("--health-url")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a cluster (a status change to ready/unhealthy emits cluster.ready/unhealthy)."""
    if all(v is None for v in (status, reason, name, environment, health_url)):
        raise typer.BadParameter(
            "nothing to change: give --status, --reason, --name, --environment or --health-url"
        )
    cluster = fetch(
        ctx,
        lambda client: client.clusters.update(
            cluster_id,
            status=status,
            reason=reason,
            name=name,
            environment=environment,
            health_url=health_url,
        ),
    )
    if not printed_json(as_json, cluster):
        say(Text(f"Updated cluster {cluster.id}: ") + render.status(cluster.status))


@clusters_app.command("delete")
def delete_cluster(ctx: typer.Context, cluster_id: IdArg) -> None:
    """Delete a cluster."""
    fetch(ctx, lambda client: client.clusters.delete(cluster_id))
    deleted(f"cluster {cluster_id}")


# ---------------------------------------------------------------------------------------------
# Deployments


@deployments_app.command("create")
def create_deployment(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", help="Model id.")],
    cluster: Annotated[str, typer.Option("--cluster", help="Cluster id.")],
    name: Annotated[str, typer.Option("--name", help="Deployment name.")],
    as_json: JsonFlag = False,
) -> None:
    """Deploy a model on a cluster (emits deployment.created or deployment.failed)."""
    deployment = fetch(ctx, lambda client: client.deployments.create(model, cluster, name))
    if printed_json(as_json, deployment):
        return
    line = Text(f"Deployment {deployment.id}: ") + render.status(deployment.status)
    if deployment.error_message:
        line.append(f" ({deployment.error_message})", style="red")
    say(line)


@deployments_app.command("list")
def list_deployments(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option("--model", help="Model id.")] = None,
    cluster: Annotated[str | None, typer.Option("--cluster", help="Cluster id.")] = None,
    status: Annotated[str | None, typer.Option()] = None,
    as_json: JsonFlag = False,
    limit: LimitOpt = 0,
) -> None:
    """List deployments."""
    deployments = fetch(
        ctx,
        lambda client: take(
            client.deployments.list(model_id=model, cluster_id=cluster, status=status), limit
        ),
    )
    show(deployments, as_json, render.deployments_table)


@deployments_app.command("show")
def show_deployment(ctx: typer.Context, deployment_id: IdArg, as_json: JsonFlag = False) -> None:
    """Show a deployment."""
    deployment = fetch(ctx, lambda client: client.deployments.get(deployment_id))
    show(deployment, as_json, lambda d: render.deployments_table([d]))


@deployments_app.command("update")
def update_deployment(
    ctx: typer.Context,
    deployment_id: IdArg,
    status: Annotated[
        str | None, typer.Option(help="e.g. failed (emits deployment.failed).")
    ] = None,
    error_message: Annotated[str | None, typer.Option("--error-message")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a deployment's status."""
    if status is None and error_message is None:
        raise typer.BadParameter("nothing to change: give --status or --error-message")
    deployment = fetch(
        ctx,
        lambda client: client.deployments.update(
            deployment_id, status=status, error_message=error_message
        ),
    )
    if not printed_json(as_json, deployment):
        say(Text(f"Updated deployment {deployment.id}: ") + render.status(deployment.status))


@deployments_app.command("delete")
def delete_deployment(ctx: typer.Context, deployment_id: IdArg) -> None:
    """Delete a deployment."""
    fetch(ctx, lambda client: client.deployments.delete(deployment_id))
    deleted(f"deployment {deployment_id}")


@deployments_app.command("revisions")
def deployment_revisions(
    ctx: typer.Context, deployment_id: IdArg, as_json: JsonFlag = False
) -> None:
    """A deployment's revisions, oldest first: what each ran and whether it was good."""
    revisions = fetch(ctx, lambda client: client.deployments.revisions(deployment_id))
    show(revisions, as_json, render.revisions_table)


# ---------------------------------------------------------------------------------------------
# Monitors


@monitors_app.command("list")
def list_monitors(
    ctx: typer.Context,
    deployment: Annotated[str | None, typer.Option("--deployment", help="Deployment id.")] = None,
    cluster: Annotated[str | None, typer.Option("--cluster", help="Cluster id.")] = None,
    as_json: JsonFlag = False,
    limit: LimitOpt = 0,
) -> None:
    """List the monitors the monitoring_configure action recorded."""
    monitors = fetch(
        ctx,
        lambda client: take(
            client.monitors.list(deployment_id=deployment, cluster_id=cluster), limit
        ),
    )
    show(monitors, as_json, render.monitors_table)


@monitors_app.command("show")
def show_monitor(ctx: typer.Context, monitor_id: IdArg, as_json: JsonFlag = False) -> None:
    """Show a monitor."""
    monitor = fetch(ctx, lambda client: client.monitors.get(monitor_id))
    show(monitor, as_json, lambda m: render.monitors_table([m]))
