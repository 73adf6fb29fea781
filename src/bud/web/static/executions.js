// Executions: the filtered list, and the live execution page (DAG coloured by step status).

import { api, listAll } from "./api.js";
import { dagSvg, legend } from "./dag.js";
import {
  badge, button, code, duration, empty, field, fmtTime, h, jsonBlock, replace, timeEl, toast,
} from "./dom.js";

const FINAL = new Set(["succeeded", "failed", "cancelled"]);
const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"];
const SINCE = [
  ["", "Any time"],
  ["1h", "Last hour"],
  ["24h", "Last 24 hours"],
  ["7d", "Last 7 days"],
];
const SINCE_MS = { "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3 };
const POLL_MS = 700;

function select(id, options, value) {
  const el = h("select", { id },
    options.map(([v, label]) => h("option", { value: v }, label)));
  el.value = value || "";
  if (el.value !== (value || "")) el.value = "";
  return el;
}

function executionRows(items, pipelines) {
  return items.map((x) => {
    const p = pipelines.get(x.pipeline_id);
    return h("tr", { "data-execution-id": x.id, "data-status": x.status },
      h("td", {}, h("a", { href: `#/executions/${encodeURIComponent(x.id)}` }, code(x.id))),
      h("td", {}, badge(x.status)),
      h("td", {}, h("a", { href: `#/pipelines/${encodeURIComponent(x.pipeline_id)}/steps` },
        p ? p.name : x.pipeline_id), h("span", { class: "sub" }, ` v${x.pipeline_version}`)),
      h("td", {}, x.trigger_id ? code(x.trigger_id) : h("span", { class: "muted" }, x.origin)),
      h("td", {}, x.event_id ? h("a", { href: `#/events/${encodeURIComponent(x.event_id)}` },
        code(x.event_id)) : h("span", { class: "muted" }, "—")),
      h("td", {}, timeEl(x.created_at)),
      h("td", { class: "num" }, x.started_at ? duration(x.started_at, x.finished_at) : "—"));
  });
}

/** The list with its filters; `pipelineId` fixes the pipeline (the pipeline's tab). */
export async function executionsList(ctx, container, { pipelineId = null } = {}) {
  const q = ctx.query;
  const fixed = Boolean(pipelineId);
  const [pipelineList, triggerList] = await Promise.all([
    listAll("/v1/pipelines", {}, 1000, ctx.signal),
    listAll("/v1/event-triggers", fixed ? { pipeline_id: pipelineId } : {}, 1000, ctx.signal),
  ]);
  const pipelines = new Map(pipelineList.map((p) => [p.id, p]));
  const statusSel = select("filter-status", [["", "All statuses"], ...STATUSES.map((s) => [s, s])],
    fixed ? "" : q.get("status"));
  const pipelineSel = fixed ? null : select("filter-pipeline",
    [["", "All pipelines"], ...pipelineList.map((p) => [p.id, p.name])], q.get("pipeline_id"));
  const triggerSel = select("filter-trigger", [["", "All triggers"], ...triggerList.map((t) => [
    t.id, `${t.event_type} · ${t.id}${fixed ? "" : ` (${pipelines.get(t.pipeline_id)?.name || t.pipeline_id})`}`])],
  fixed ? "" : q.get("trigger_id"));
  const sinceSel = select("filter-since", SINCE, fixed ? "" : q.get("since"));
  const eventId = fixed ? null : q.get("event_id");

  const tableHost = h("div", { "aria-live": "polite" });
  const more = button("Load more", { class: "btn", hidden: true });
  let items = [];
  let cursor = null;
  let paged = false;

  const params = () => {
    const ms = SINCE_MS[sinceSel.value];
    return {
      status: statusSel.value, trigger_id: triggerSel.value, event_id: eventId,
      pipeline_id: fixed ? pipelineId : pipelineSel.value,
      since: ms ? new Date(Date.now() - ms).toISOString() : "",
    };
  };
  const visible = () => items;
  const draw = () => {
    const shown = visible();
    more.hidden = !cursor;
    if (!shown.length) {
      replace(tableHost, empty("No executions match these filters."));
      return;
    }
    replace(tableHost, h("div", { class: "table-wrap" }, h("table", { class: "table" },
      h("caption", { class: "sr-only" }, "Executions"),
      h("thead", {}, h("tr", {}, ["Execution", "Status", "Pipeline", "Trigger", "Event", "Created",
        "Duration"].map((c) => h("th", { scope: "col", class: c === "Duration" ? "num" : null }, c)))),
      h("tbody", {}, executionRows(shown, pipelines)))));
  };
  const load = async () => {
    const page = await api.get("/v1/executions", { ...params(), limit: 50 }, ctx.signal);
    items = page.items;
    cursor = page.next_cursor;
    paged = false;
    draw();
  };
  const onFilter = async () => {
    if (!fixed) {
      ctx.setQuery({ status: statusSel.value, pipeline_id: pipelineSel.value,
        trigger_id: triggerSel.value, since: sinceSel.value, event_id: eventId });
    }
    await load();
  };
  for (const el of [statusSel, pipelineSel, triggerSel, sinceSel]) {
    if (el) el.addEventListener("change", onFilter);
  }
  more.addEventListener("click", async () => {
    const page = await api.get("/v1/executions", { ...params(), limit: 50, cursor }, ctx.signal);
    items = items.concat(page.items);
    cursor = page.next_cursor;
    paged = true;
    draw();
  });
  await load();
  // Keep the first page fresh while something is still running.
  ctx.every(2500, async () => {
    if (paged || !items.some((x) => !FINAL.has(x.status))) return true;
    await load();
    return true;
  });

  replace(container,
    h("h2", { class: "sr-only" }, "Executions list"),
    h("form", { class: "filters", role: "search", "aria-label": "Filter executions",
      onsubmit: (e) => e.preventDefault() },
    field({ label: "Status", input: statusSel }),
    pipelineSel ? field({ label: "Pipeline", input: pipelineSel }) : null,
    field({ label: "Trigger", input: triggerSel }),
    field({ label: "Time", input: sinceSel }),
    eventId ? h("p", { class: "filter-note" }, "Event ", code(eventId), " ",
      h("a", { href: "#/executions" }, "clear")) : null),
    tableHost, more);
}

export async function executionsPage(ctx) {
  ctx.setTitle("Executions");
  const body = h("div", {});
  await executionsList(ctx, body);
  return h("section", { class: "page" },
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Executions"),
      h("p", { class: "lead" }, "Every run of every pipeline, newest first."))),
    body);
}

// ---------------------------------------------------------------------------------------
// One execution

function logsView(logs) {
  if (!logs || !logs.length) return h("p", { class: "muted" }, "No log lines.");
  return h("ol", { class: "logs" }, logs.map((l) => h("li", { class: `log log-${l.level || "info"}` },
    h("span", { class: "log-level" }, l.level || "info"), " ",
    h("span", { class: "log-msg" }, typeof l.message === "string" ? l.message : JSON.stringify(l)))));
}

function attemptsView(attempts) {
  if (!attempts.length) return h("p", { class: "muted" }, "No attempts yet.");
  return h("div", { class: "table-wrap" }, h("table", { class: "table table-compact" },
    h("caption", { class: "sr-only" }, "Attempts"),
    h("thead", {}, h("tr", {}, ["#", "Status", "Started", "Duration", "Error"].map((c) =>
      h("th", { scope: "col" }, c)))),
    h("tbody", {}, attempts.map((a) => h("tr", {},
      h("td", {}, String(a.attempt)), h("td", {}, badge(a.status)),
      h("td", {}, fmtTime(a.started_at)), h("td", {}, duration(a.started_at, a.finished_at)),
      h("td", {}, a.error ? h("span", { class: "err-text" }, a.error) : "—"))))));
}

function stepDetail(step, attempts, open) {
  const det = h("details", { class: "step", "data-step-id": step.step_id, "data-status": step.status,
    open, id: `step-${step.step_id}` },
  h("summary", {},
    badge(step.status), " ", h("span", { class: "strong" }, step.step_id), " ",
    h("span", { class: "pill" }, step.action),
    h("span", { class: "summary-meta" },
      `${step.attempts} attempt${step.attempts === 1 ? "" : "s"}`,
      step.started_at ? ` · ${duration(step.started_at, step.finished_at)}` : "")),
  h("div", { class: "step-body" },
    step.error ? h("div", { class: "form-error", role: "note" }, h("strong", {}, "Error: "), step.error)
      : null,
    h("dl", { class: "kv kv-inline" },
      h("dt", {}, "depends on"), h("dd", {}, step.depends_on.length ? step.depends_on.join(", ") : "—"),
      h("dt", {}, "created"), h("dd", {}, fmtTime(step.created_at)),
      h("dt", {}, "started"), h("dd", {}, fmtTime(step.started_at)),
      h("dt", {}, "finished"), h("dd", {}, fmtTime(step.finished_at))),
    h("div", { class: "two-col" },
      h("div", {}, h("h4", {}, "Rendered params"),
        step.params == null ? h("p", { class: "muted" }, "not rendered yet")
          : jsonBlock(step.params, `Params of ${step.step_id}`)),
      h("div", {}, h("h4", {}, "Outputs"),
        step.outputs ? jsonBlock(step.outputs, `Outputs of ${step.step_id}`)
          : h("p", { class: "muted" }, "none"))),
    h("h4", {}, "Logs"), logsView(step.logs),
    h("h4", {}, "Attempts"), attemptsView(attempts)));
  return det;
}

export async function executionPage(ctx, id) {
  const path = `/v1/executions/${encodeURIComponent(id)}`;
  const [first, firstAttempts] = await Promise.all([
    api.get(path, null, ctx.signal),
    api.get(`${path}/attempts`, null, ctx.signal).then((r) => r.items, () => []),
  ]);
  ctx.setTitle(`Execution ${id}`);
  let pipelineName = first.pipeline_id;
  try {
    pipelineName = (await api.get(`/v1/pipelines/${encodeURIComponent(first.pipeline_id)}`, null,
      ctx.signal)).name;
  } catch {
    /* the pipeline may be deleted: its id will do */
  }

  const statusHost = h("span", { class: "status-host", "aria-live": "polite" });
  const metaHost = h("dl", { class: "kv kv-inline exec-meta" });
  const errorHost = h("div", {});
  const dagHost = h("div", { class: "dag-host" });
  const stepsHost = h("div", { class: "steps" });
  const cancel = button("Cancel", { class: "btn btn-danger-ghost" });
  const retry = button("Retry", { class: "btn" });
  const opened = new Set();
  const autoOpened = new Set();
  let selected = null;
  let last = "";
  let exe = first;
  let attempts = firstAttempts;

  const select = (stepId) => {
    selected = stepId;
    opened.add(stepId);
    draw(true);
    const el = document.getElementById(`step-${stepId}`);
    if (el) {
      el.open = true;
      el.scrollIntoView({ behavior: "smooth", block: "start" });
      el.querySelector("summary").focus({ preventScroll: true });
    }
  };

  function draw(force = false) {
    const key = JSON.stringify([exe, attempts, selected]);
    if (!force && key === last) return;
    last = key;
    replace(statusHost, badge(exe.status, exe.status));
    statusHost.dataset.status = exe.status;
    const final = FINAL.has(exe.status);
    cancel.disabled = final;
    retry.disabled = !(exe.status === "failed" || exe.status === "cancelled");
    replace(metaHost,
      h("dt", {}, "pipeline"), h("dd", {}, h("a", { href: `#/pipelines/${encodeURIComponent(exe.pipeline_id)}/steps` },
        pipelineName), ` (version ${exe.pipeline_version})`),
      h("dt", {}, "started by"), h("dd", {}, exe.trigger_id
        ? [h("span", {}, "trigger "), code(exe.trigger_id)] : exe.origin),
      h("dt", {}, "event"), h("dd", {}, exe.event_id
        ? h("a", { href: `#/events/${encodeURIComponent(exe.event_id)}` }, code(exe.event_id)) : "—"),
      h("dt", {}, "created"), h("dd", {}, fmtTime(exe.created_at)),
      h("dt", {}, "started"), h("dd", {}, fmtTime(exe.started_at)),
      h("dt", {}, "finished"), h("dd", {}, fmtTime(exe.finished_at)),
      h("dt", {}, "duration"), h("dd", {}, duration(exe.started_at, exe.finished_at)),
      Object.keys(exe.params || {}).length
        ? [h("dt", {}, "params"), h("dd", {}, code(JSON.stringify(exe.params)))] : null);
    replace(errorHost, exe.error ? h("div", { class: "form-error", role: "note" },
      h("strong", {}, "Error: "), exe.error) : null);
    const steps = exe.steps || [];
    const active = document.activeElement;
    const focusedStep = active && dagHost.contains(active) && active.dataset ? active.dataset.stepId
      : null;
    replace(dagHost, dagSvg(steps, { onSelect: select, selected,
      label: `Steps of execution ${exe.id}, coloured by status` }));
    if (focusedStep) {
      const again = [...dagHost.querySelectorAll(".dag-node")].find((n) => n.dataset.stepId === focusedStep);
      if (again) again.focus({ preventScroll: true });
    }
    for (const d of stepsHost.querySelectorAll("details")) {
      if (d.open) opened.add(d.dataset.stepId);
      else opened.delete(d.dataset.stepId);
    }
    const byStep = new Map();
    for (const a of attempts) {
      if (!byStep.has(a.step_id)) byStep.set(a.step_id, []);
      byStep.get(a.step_id).push(a);
    }
    for (const st of steps) {
      // A failed step opens once, by itself; after that the operator decides.
      if (st.status === "failed" && !autoOpened.has(st.step_id)) {
        autoOpened.add(st.step_id);
        opened.add(st.step_id);
      }
    }
    replace(stepsHost, steps.map((st) => stepDetail(st, byStep.get(st.step_id) || [],
      opened.has(st.step_id))));
  }

  const refresh = async () => {
    const [next, nextAttempts] = await Promise.all([
      api.get(path, null, ctx.signal),
      api.get(`${path}/attempts`, null, ctx.signal).then((r) => r.items, () => attempts),
    ]);
    if (!ctx.alive) return false;
    exe = next;
    attempts = nextAttempts;
    draw();
    return !FINAL.has(exe.status);
  };
  const poll = () => ctx.every(POLL_MS, refresh);

  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      exe = await api.post(`${path}/cancel`);
      toast(`Execution ${id} cancelled`);
      await refresh();
    } catch (err) {
      toast(err.message, "error");
      draw(true);
    }
  });
  retry.addEventListener("click", async () => {
    retry.disabled = true;
    try {
      exe = await api.post(`${path}/retry`);
      toast(`Execution ${id} retried`);
      draw(true);
      poll();
    } catch (err) {
      toast(err.message, "error");
      draw(true);
    }
  });

  draw(true);
  if (!FINAL.has(exe.status)) poll();

  return h("section", { class: "page" },
    h("div", { class: "page-head" },
      h("div", {},
        h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
          h("a", { href: "#/executions" }, "Executions"), " / "),
        h("h1", {}, "Execution ", code(id)),
        h("p", { class: "status-line" }, "Status: ", statusHost)),
      h("div", { class: "head-actions" }, cancel, retry)),
    metaHost, errorHost,
    h("section", { class: "card" }, h("h2", {}, "Steps"), legend(), dagHost),
    h("h2", {}, "Step details"),
    stepsHost);
}
