// Platform: models, clusters (health) and deployments (their monitoring and revisions), with the
// forms that emit the events.

import { api, listAll } from "./api.js";
import {
  badge, button, code, compact, confirmDialog, empty, field, formError, h, replace, setFieldError,
  setFormError, showApiError, timeEl, toast,
} from "./dom.js";
import { jsonEditor } from "./editor.js";

const CLUSTER_STATUSES = ["ready", "unhealthy", "provisioning", "offline"];
const SOURCES = ["hugging_face", "s3", "local", "url", "registry"];

function table(caption, headers, rows) {
  return h("div", { class: "table-wrap" }, h("table", { class: "table table-cards" },
    h("caption", { class: "sr-only" }, caption),
    h("thead", {}, h("tr", {}, headers.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows)));
}

function text(id, attrs = {}) {
  return h("input", { id, type: "text", autocomplete: "off", ...attrs });
}

/** A collapsible form host opened by a button (aria-expanded). */
function collapsible(label, hostId, build) {
  const host = h("div", { class: "panel", id: hostId, hidden: true });
  const toggle = button(label, { class: "btn btn-primary", "aria-expanded": "false",
    "aria-controls": hostId });
  toggle.addEventListener("click", () => {
    const open = host.hidden;
    host.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open) {
      const { form, focus } = build();
      replace(host, form);
      focus();
    }
  });
  return { host, toggle };
}

function modelForm(ctx) {
  const name = text("model-name", { required: true, placeholder: "Llama-3.2-1B" });
  const source = text("model-source", { required: true, value: "hugging_face", list: "model-sources" });
  const uri = text("model-uri", { placeholder: "hf://meta-llama/Llama-3.2-1B" });
  const createdBy = text("model-created-by", { placeholder: "user@example.com" });
  const meta = jsonEditor({ id: "model-metadata", rows: 4, placeholder: '{"auto_deploy": true}' });
  const fields = {
    name: field({ label: "Model name", input: name }),
    source: field({ label: "Source", input: source,
      after: h("datalist", { id: "model-sources" }, SOURCES.map((v) => h("option", { value: v }))) }),
    uri: field({ label: "URI", input: uri, hint: "Optional." }),
    created_by: field({ label: "Created by", input: createdBy, hint: "Optional." }),
    metadata: field({ label: "Metadata (JSON)", input: meta.textarea, control: meta.el,
      className: "field-wide",
      hint: "Optional JSON object; its fields are part of the model.added event's data." }),
  };
  meta.textarea.addEventListener("input", () => {
    const parsed = meta.parse();
    setFieldError(fields.metadata, parsed.ok ? null : `Not valid JSON: ${parsed.message}`);
  });
  const fallback = formError();
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Save model");
  const form = h("form", { class: "form", novalidate: true, "aria-label": "Add model" },
    h("div", { class: "form-row" }, fields.name, fields.source),
    h("div", { class: "form-row" }, fields.uri, fields.created_by),
    fields.metadata, fallback, h("div", { class: "form-actions" }, submit));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    Object.values(fields).forEach((f) => setFieldError(f, null));
    setFormError(fallback, null);
    if (!name.value.trim()) {
      setFieldError(fields.name, "name is required");
      name.focus();
      return;
    }
    if (!source.value.trim()) {
      setFieldError(fields.source, "source is required");
      source.focus();
      return;
    }
    const parsed = meta.parse();
    if (!parsed.ok || (!parsed.empty && (typeof parsed.value !== "object" || parsed.value === null ||
        Array.isArray(parsed.value)))) {
      setFieldError(fields.metadata, parsed.ok ? "metadata must be a JSON object"
        : `Not valid JSON: ${parsed.message}`);
      meta.textarea.focus();
      return;
    }
    submit.disabled = true;
    try {
      const model = await api.post("/v1/models", {
        name: name.value.trim(), source: source.value.trim(), uri: uri.value.trim() || null,
        created_by: createdBy.value.trim() || null, metadata: parsed.empty ? {} : parsed.value,
      });
      toast(`Model ${model.name} added (${model.id}): model.added published`);
      ctx.refresh();
    } catch (err) {
      showApiError(err, fields, fallback);
    } finally {
      submit.disabled = false;
    }
  });
  return { form, focus: () => name.focus() };
}

function clusterForm(ctx) {
  const id = text("cluster-id", { placeholder: "cluster_prod" });
  const name = text("cluster-name", { required: true, placeholder: "Production" });
  const env = text("cluster-environment", { placeholder: "production" });
  const status = h("select", { id: "cluster-status" },
    CLUSTER_STATUSES.map((st) => h("option", { value: st }, st)));
  const healthUrl = text("cluster-health-url", { type: "url", placeholder: "https://…/healthz" });
  const fields = {
    id: field({ label: "ID", input: id, hint: "Optional; letters, digits, _ . -" }),
    name: field({ label: "Cluster name", input: name }),
    environment: field({ label: "Environment", input: env, hint: "Optional." }),
    status: field({ label: "Status", input: status }),
    health_url: field({ label: "Health URL", input: healthUrl,
      hint: "Optional; probed to keep the status current." }),
  };
  const fallback = formError();
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Create cluster");
  const form = h("form", { class: "form", novalidate: true, "aria-label": "Create cluster" },
    h("div", { class: "form-row" }, fields.id, fields.name),
    h("div", { class: "form-row" }, fields.environment, fields.status),
    fields.health_url, fallback, h("div", { class: "form-actions" }, submit));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    Object.values(fields).forEach((f) => setFieldError(f, null));
    setFormError(fallback, null);
    if (!name.value.trim()) {
      setFieldError(fields.name, "name is required");
      name.focus();
      return;
    }
    submit.disabled = true;
    try {
      const cluster = await api.post("/v1/clusters", {
        id: id.value.trim() || null, name: name.value.trim(), environment: env.value.trim() || null,
        status: status.value, health_url: healthUrl.value.trim() || null,
      });
      toast(`Cluster ${cluster.id} created (${cluster.status})`);
      ctx.refresh();
    } catch (err) {
      showApiError(err, fields, fallback);
    } finally {
      submit.disabled = false;
    }
  });
  return { form, focus: () => id.focus() };
}

function deploymentForm(ctx, models, clusters) {
  const model = h("select", { id: "deployment-model" },
    models.map((m) => h("option", { value: m.id }, `${m.name} (${m.id})`)));
  const cluster = h("select", { id: "deployment-cluster" },
    clusters.map((c) => h("option", { value: c.id }, `${c.name} (${c.id}, ${c.status})`)));
  const name = text("deployment-name", { required: true });
  const fields = {
    model_id: field({ label: "Model", input: model }),
    cluster_id: field({ label: "Cluster", input: cluster }),
    deployment_name: field({ label: "Deployment name", input: name }),
  };
  model.addEventListener("change", () => {
    const m = models.find((x) => x.id === model.value);
    if (m && !name.dataset.touched) name.value = `${m.name}-manual`;
  });
  name.addEventListener("input", () => { name.dataset.touched = "1"; });
  model.dispatchEvent(new Event("change"));
  const fallback = formError();
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Create deployment");
  const form = h("form", { class: "form", novalidate: true, "aria-label": "Create deployment" },
    h("div", { class: "form-row" }, fields.model_id, fields.cluster_id), fields.deployment_name,
    fallback, h("div", { class: "form-actions" }, submit));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    Object.values(fields).forEach((f) => setFieldError(f, null));
    setFormError(fallback, null);
    submit.disabled = true;
    try {
      const dep = await api.post("/v1/deployments", { model_id: model.value, cluster_id: cluster.value,
        deployment_name: name.value.trim() });
      toast(`Deployment ${dep.name}: ${dep.status}`, dep.status === "failed" ? "error" : "ok");
      ctx.refresh();
    } catch (err) {
      showApiError(err, fields, fallback);
    } finally {
      submit.disabled = false;
    }
  });
  return { form, focus: () => model.focus() };
}

function clusterStatusControl(ctx, c) {
  const sel = h("select", { id: `cluster-status-${c.id}`, class: "select-small" },
    CLUSTER_STATUSES.map((st) => h("option", { value: st }, st)));
  sel.value = c.status;
  sel.addEventListener("change", async () => {
    // ready and unhealthy publish cluster.ready / cluster.unhealthy, which may start pipelines.
    const emits = sel.value === "ready" || sel.value === "unhealthy";
    const ok = await confirmDialog({
      title: `Set ${c.name || c.id} to ${sel.value}?`,
      body: emits ? `This publishes cluster.${sel.value}, which can start pipelines.`
        : `The cluster's status changes from ${c.status} to ${sel.value}.`,
      confirmLabel: `Set to ${sel.value}`,
    });
    if (!ok) {
      sel.value = c.status;
      sel.focus();
      return;
    }
    sel.disabled = true;
    try {
      const saved = await api.patch(`/v1/clusters/${encodeURIComponent(c.id)}`,
        { status: sel.value, reason: "set from the UI" });
      toast(`Cluster ${saved.id} is ${saved.status}`);
      ctx.refresh();
    } catch (err) {
      sel.value = c.status;
      toast(err.message, "error");
      sel.disabled = false;
    }
  });
  return h("span", { class: "inline-control" },
    h("label", { for: sel.id, class: "sr-only" }, `Set status of ${c.id}`), sel);
}

export async function platformPage(ctx) {
  ctx.setTitle("Platform");
  const [models, clusters, deployments, monitors] = await Promise.all([
    listAll("/v1/models", {}, 1000, ctx.signal),
    listAll("/v1/clusters", {}, 1000, ctx.signal),
    listAll("/v1/deployments", {}, 1000, ctx.signal),
    listAll("/v1/monitors", {}, 1000, ctx.signal),
  ]);
  const monitorOf = new Map(monitors.map((m) => [m.deployment_id, m]));
  const history = h("div", { class: "panel", id: "revisions-host", hidden: true,
    "aria-live": "polite" });
  const modelNames = new Map(models.map((m) => [m.id, m.name]));
  const clusterNames = new Map(clusters.map((c) => [c.id, c.name]));

  const addModel = collapsible("Add model", "model-form-host", () => modelForm(ctx));
  const addCluster = collapsible("New cluster", "cluster-form-host", () => clusterForm(ctx));
  const addDeployment = collapsible("New deployment", "deployment-form-host",
    () => deploymentForm(ctx, models, clusters));
  if (!models.length || !clusters.length) addDeployment.toggle.disabled = true;

  const modelRows = models.map((m) => h("tr", { "data-model-id": m.id },
    h("td", {}, h("span", { class: "strong" }, m.name), h("div", { class: "sub" }, code(m.id))),
    h("td", {}, m.source),
    h("td", {}, Object.keys(m.metadata || {}).length ? code(compact(m.metadata))
      : h("span", { class: "muted" }, "—")),
    h("td", {}, m.created_by || h("span", { class: "muted" }, "—")),
    h("td", {}, timeEl(m.created_at))));
  const clusterRows = clusters.map((c) => h("tr", { "data-cluster-id": c.id, "data-status": c.status },
    h("td", {}, h("span", { class: "strong" }, c.name), h("div", { class: "sub" }, code(c.id))),
    h("td", {}, c.environment || h("span", { class: "muted" }, "—")),
    h("td", {}, badge(c.status), c.reason ? h("div", { class: "sub" }, c.reason) : null),
    h("td", {}, clusterStatusControl(ctx, c)),
    h("td", {}, timeEl(c.updated_at))));
  const deploymentRows = deployments.map((d) => h("tr", { "data-deployment-id": d.id, "data-status": d.status },
    h("td", {}, h("span", { class: "strong" }, d.name), h("div", { class: "sub" }, code(d.id))),
    h("td", {}, modelNames.get(d.model_id) || d.model_id),
    h("td", {}, clusterNames.get(d.cluster_id) || d.cluster_id),
    h("td", {}, badge(d.status)),
    h("td", {}, d.error_message ? h("span", { class: "err-text" }, d.error_message)
      : h("span", { class: "muted" }, "—")),
    h("td", {}, monitoringCell(monitorOf.get(d.id))),
    h("td", {}, timeEl(d.created_at)),
    h("td", {}, revisionsButton(ctx, d, history))));

  return h("section", { class: "page" },
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Platform"),
      h("p", { class: "lead" },
        "Models, clusters and deployments. Changes here publish model.*, cluster.* and deployment.* events."))),
    h("section", { class: "block", "aria-labelledby": "models-title" },
      h("div", { class: "section-head" }, h("h2", { id: "models-title" }, "Models"), addModel.toggle),
      addModel.host,
      models.length ? table("Models", ["Model", "Source", "Metadata", "Created by", "Added"], modelRows)
        : empty("No models yet.")),
    h("section", { class: "block", "aria-labelledby": "clusters-title" },
      h("div", { class: "section-head" }, h("h2", { id: "clusters-title" }, "Clusters"), addCluster.toggle),
      addCluster.host,
      clusters.length ? table("Clusters", ["Cluster", "Environment", "Health", "Set status", "Updated"],
        clusterRows) : empty("No clusters yet.")),
    h("section", { class: "block", "aria-labelledby": "deployments-title" },
      h("div", { class: "section-head" }, h("h2", { id: "deployments-title" }, "Deployments"),
        addDeployment.toggle),
      addDeployment.host,
      deployments.length ? table("Deployments", ["Deployment", "Model", "Cluster", "Status", "Error",
        "Monitoring", "Created", "Revisions"], deploymentRows) : empty("No deployments yet."),
      history));
}

/** What monitoring_configure recorded for a deployment: its metrics and alert rules. */
function monitoringCell(monitor) {
  if (!monitor) return h("span", { class: "muted" }, "—");
  const config = monitor.config || {};
  const rules = (config.alerts || []).map((a) =>
    `${a.metric} ${"above" in a ? ">" : "<"} ${"above" in a ? a.above : a.below}`);
  return h("span", { "data-monitor-id": monitor.id }, (config.metrics || []).join(", "),
    rules.length ? h("div", { class: "sub" }, `alerts: ${rules.join("; ")}`) : null,
    config.channel ? h("div", { class: "sub" }, `to ${config.channel}`) : null);
}

/** Shows a deployment's revisions (what each ran, which were good) in the history panel. */
function revisionsButton(ctx, d, host) {
  const btn = button("History", { class: "btn btn-small", "aria-controls": "revisions-host",
    "aria-label": `Revisions of ${d.name}` });
  btn.addEventListener("click", async () => {
    try {
      const { items } = await api.get(`/v1/deployments/${encodeURIComponent(d.id)}/revisions`,
        {}, ctx.signal);
      const rows = items.map((r) => h("tr", { "data-revision": String(r.revision) },
        h("td", {}, String(r.revision)),
        h("td", {}, r.model_version || h("span", { class: "muted" }, "—")),
        h("td", {}, Object.keys(r.config || {}).length ? code(compact(r.config))
          : h("span", { class: "muted" }, "—")),
        h("td", {}, badge(r.status)),
        h("td", {}, r.good ? "yes" : "no"),
        h("td", {}, r.source_revision ? `${r.reason} to ${r.source_revision}` : r.reason),
        h("td", {}, timeEl(r.created_at))));
      replace(host, h("h3", {}, `Revisions of ${d.name}`),
        rows.length ? table(`Revisions of ${d.name}`, ["Revision", "Model version", "Config",
          "Status", "Good", "Reason", "Created"], rows) : empty("No revisions recorded."));
      host.hidden = false;
    } catch (err) {
      toast(err.message, "error");
    }
  });
  return btn;
}
