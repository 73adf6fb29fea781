// Executions: the filtered list, and the live execution page (DAG coloured by step status,
// a timeline of steps and attempts, step details, Cancel / Retry / Retry from a step).
// Both follow the server's live stream (live.js); nothing here polls.

import { api, listAll } from "./api.js";
import { dagSvg, legend } from "./dag.js";
import {
  badge, button, code, confirmDialog, durationEl, durationMs, empty, field, fmtMs, fmtTime, h,
  jsonBlock, replace, s, serverNow, timeEl, toast,
} from "./dom.js";
import { follow, liveBadge } from "./live.js";

const FINAL = new Set(["succeeded", "failed", "cancelled"]);
const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"];
const SINCE = [
  ["", "Any time"],
  ["1h", "Last hour"],
  ["24h", "Last 24 hours"],
  ["7d", "Last 7 days"],
];
const SINCE_MS = { "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3 };

/** "retried 2×" and "replay" marks for an execution (missing fields count as 0). */
export function executionMarks(x) {
  const marks = [];
  if ((x.retry_count || 0) > 0) {
    marks.push(h("span", { class: "pill pill-retried", "data-mark": "retried" },
      `retried ${x.retry_count}×`));
  }
  if ((x.delivery || 0) > 0 || x.origin === "replay") {
    marks.push(h("span", { class: "pill pill-replay", "data-mark": "replayed" },
      (x.delivery || 0) > 0 ? `replay #${x.delivery}` : "replay"));
  }
  return marks;
}

function select(id, options, value) {
  const el = h("select", { id },
    options.map(([v, label]) => h("option", { value: v }, label)));
  el.value = value || "";
  if (el.value !== (value || "")) el.value = "";
  return el;
}

function executionRows(items, pipelines, triggers) {
  return items.map((x) => {
    const p = pipelines.get(x.pipeline_id);
    return h("tr", { "data-execution-id": x.id, "data-status": x.status },
      h("td", {}, h("a", { href: `#/executions/${encodeURIComponent(x.id)}` }, code(x.id))),
      h("td", {}, h("span", { class: "cell-stack" }, badge(x.status), executionMarks(x))),
      h("td", {}, h("a", { href: `#/pipelines/${encodeURIComponent(x.pipeline_id)}/steps` },
        p ? p.name : x.pipeline_id), h("span", { class: "sub" }, ` v${x.pipeline_version}`)),
      h("td", {}, x.trigger_id ? [triggers.get(x.trigger_id)
        ? h("div", { class: "trigger-name" }, triggers.get(x.trigger_id)) : null, code(x.trigger_id)]
        : h("span", { class: "muted" }, x.origin)),
      h("td", {}, x.event_id ? h("a", { href: `#/events/${encodeURIComponent(x.event_id)}` },
        code(x.event_id)) : h("span", { class: "muted" }, "—")),
      h("td", {}, timeEl(x.created_at)),
      h("td", { class: "num" }, x.started_at ? durationEl(x.started_at, x.finished_at) : "—"));
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
  const triggerNames = new Map(triggerList.filter((t) => t.name).map((t) => [t.id, t.name]));
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

  const params = () => {
    const ms = SINCE_MS[sinceSel.value];
    return {
      status: statusSel.value, trigger_id: triggerSel.value, event_id: eventId,
      pipeline_id: fixed ? pipelineId : pipelineSel.value,
      since: ms ? new Date(Date.now() - ms).toISOString() : "",
    };
  };

  const draw = () => {
    const shown = items;
    more.hidden = !cursor;
    if (!shown.length) {
      replace(tableHost, empty("No executions match these filters."));
      return;
    }
    replace(tableHost, h("div", { class: "table-wrap" }, h("table", { class: "table table-cards" },
      h("caption", { class: "sr-only" }, "Executions"),
      h("thead", {}, h("tr", {}, ["Execution", "Status", "Pipeline", "Trigger", "Event", "Created",
        "Duration"].map((c) => h("th", { scope: "col", class: c === "Duration" ? "num" : null }, c)))),
      h("tbody", {}, executionRows(shown, pipelines, triggerNames)))));
    for (const id of fresh) {
      const tr = tableHost.querySelector(`tr[data-execution-id="${CSS.escape(id)}"]`);
      if (tr) tr.classList.add("is-new");
    }
    fresh = new Set();
  };
  let fresh = new Set();
  const load = async () => {
    const page = await api.get("/v1/executions", { ...params(), limit: 50 }, ctx.signal);
    items = page.items;
    cursor = page.next_cursor;
    draw();
  };
  // The server pushes new and changed rows of the first page for these filters.
  let live = null;
  const badgeEl = liveBadge();
  const subscribe = () => {
    if (live) live.abort();
    live = new AbortController();
    ctx.signal.addEventListener("abort", () => live.abort());
    follow({ topic: "executions", ...params() }, {
      executions: ({ items: changed }) => {
        const known = new Map(items.map((x, i) => [x.id, i]));
        const added = [];
        for (const x of changed) {
          if (known.has(x.id)) items[known.get(x.id)] = x;
          else added.push(x);
        }
        if (added.length) {
          fresh = new Set(added.map((x) => x.id));
          items = [...added, ...items]; // the server sends them newest first
        }
        draw();
      },
    }, { signal: live.signal, onState: badgeEl.setState });
  };
  const onFilter = async () => {
    if (!fixed) {
      ctx.setQuery({ status: statusSel.value, pipeline_id: pipelineSel.value,
        trigger_id: triggerSel.value, since: sinceSel.value, event_id: eventId });
    }
    await load();
    subscribe();
  };
  for (const el of [statusSel, pipelineSel, triggerSel, sinceSel]) {
    if (el) el.addEventListener("change", onFilter);
  }
  more.addEventListener("click", async () => {
    const page = await api.get("/v1/executions", { ...params(), limit: 50, cursor }, ctx.signal);
    items = items.concat(page.items);
    cursor = page.next_cursor;
    draw();
  });
  await load();
  subscribe();

  replace(container,
    h("h2", { class: "sr-only" }, "Executions list"),
    h("form", { class: "filters", role: "search", "aria-label": "Filter executions",
      onsubmit: (e) => e.preventDefault() },
    field({ label: "Status", input: statusSel }),
    pipelineSel ? field({ label: "Pipeline", input: pipelineSel }) : null,
    field({ label: "Trigger", input: triggerSel }),
    field({ label: "Time", input: sinceSel }),
    eventId ? h("p", { class: "filter-note" }, "Event ", code(eventId), " ",
      h("a", { href: "#/executions" }, "clear")) : null,
    h("p", { class: "filter-note" }, badgeEl)),
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

const ms = (iso) => (iso ? new Date(iso).getTime() : null);

function logsView(logs, label) {
  if (!logs || !logs.length) return h("p", { class: "muted" }, "No log lines.");
  return h("ol", { class: "logs", "aria-label": label || null },
    logs.map((l) => h("li", { class: `log log-${l.level || "info"}` },
      h("span", { class: "log-level" }, l.level || "info"), " ",
      h("span", { class: "log-msg" }, typeof l.message === "string" ? l.message : JSON.stringify(l)))));
}

/**
 * When each attempt of a step could have started: the first one when its last dependency
 * finished (the execution's start for a root step), a later one when the previous ended.
 * The gap to its real start is the queue delay.
 */
function readyTimes(exe, step, stepAttempts, finishedOf) {
  const base = step.depends_on.length
    ? Math.max(...step.depends_on.map((d) => finishedOf.get(d) || 0))
    : ms(exe.started_at) || ms(exe.created_at);
  return stepAttempts.map((a, i) => {
    const previous = i > 0 ? ms(stepAttempts[i - 1].finished_at) : null;
    const ready = Math.max(base || 0, previous || 0);
    return ready && ready <= ms(a.started_at) ? ready : null;
  });
}

/** A for_each step's items: one row each, in item order, with its state. */
function itemsView(step) {
  const items = step.items || [];
  const counts = {};
  for (const it of items) counts[it.status] = (counts[it.status] || 0) + 1;
  const summary = Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(", ");
  return h("div", { class: "step-items", "data-items": String(items.length) },
    h("h4", {}, `Items (${items.length}${summary ? `: ${summary}` : ""})`),
    items.length ? h("table", { class: "table items-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "status"), h("th", {}, "attempts"),
        h("th", {}, "outputs / error"))),
      h("tbody", {}, items.map((it) => h("tr", { "data-index": String(it.index), "data-status": it.status },
        h("td", {}, String(it.index)), h("td", {}, badge(it.status)), h("td", {}, String(it.attempts || 0)),
        h("td", {}, it.error ? h("span", { class: "form-error" }, it.error)
          : code(JSON.stringify(it.outputs || {}))))))) : h("p", { class: "muted" }, "No items."));
}

function attemptsView(stepAttempts, ready) {
  if (!stepAttempts.length) return h("p", { class: "muted" }, "No attempts yet.");
  return h("div", { class: "table-wrap" }, h("table", { class: "table table-compact table-cards" },
    h("caption", { class: "sr-only" }, "Attempts"),
    h("thead", {}, h("tr", {}, ["#", "Status", "Started", "Queued", "Duration", "Error"].map((c) =>
      h("th", { scope: "col" }, c)))),
    h("tbody", {}, stepAttempts.map((a, i) => h("tr", { "data-attempt": a.attempt, "data-status": a.status },
      h("td", {}, String(a.attempt)), h("td", {}, badge(a.status)),
      h("td", {}, fmtTime(a.started_at)),
      h("td", {}, ready[i] ? fmtMs(ms(a.started_at) - ready[i]) : "—"),
      h("td", {}, durationEl(a.started_at, a.finished_at)),
      h("td", {}, a.error ? h("span", { class: "err-text" }, a.error) : "—"))))));
}

function stepDetail(exe, step, stepAttempts, ready, { open, onRetryFrom }) {
  const latest = stepAttempts[stepAttempts.length - 1] || null;
  const running = latest && latest.status === "running";
  // Params and logs of the attempt in progress come from the attempt record (written when it
  // starts and while it runs); the step's own copy is complete once it ends.
  const params = step.params != null ? step.params : latest ? latest.params : null;
  const logs = running || !(step.logs && step.logs.length) ? (latest ? latest.logs : step.logs)
    : step.logs;
  const count = Math.max(step.attempts || 0, stepAttempts.length);
  const took = latest ? durationEl(latest.started_at, latest.finished_at) : null;
  const final = FINAL.has(exe.status);
  const det = h("details", { class: "step", "data-step-id": step.step_id, "data-status": step.status,
    open, id: `step-${step.step_id}` },
  h("summary", {},
    badge(step.status), " ", h("span", { class: "strong" }, step.step_id), " ",
    h("span", { class: "pill" }, step.action),
    h("span", { class: "summary-meta" }, `${count} attempt${count === 1 ? "" : "s"}`,
      took ? [" · ", took] : null)),
  h("div", { class: "step-body" },
    step.error ? h("div", { class: "form-error", role: "note" }, h("strong", {}, "Error: "), step.error)
      : null,
    running ? h("p", { class: "running-note", "data-running-attempt": latest.attempt },
      `Attempt ${latest.attempt} running for `, durationEl(latest.started_at, null))
      : step.status === "running" && step.started_at ? h("p", { class: "running-note" },
        `Attempt ${count || 1} running for `, durationEl(step.started_at, null)) : null,
    h("dl", { class: "kv kv-inline" },
      h("dt", {}, "depends on"), h("dd", {}, step.depends_on.length ? step.depends_on.join(", ") : "—"),
      h("dt", {}, "queued for"), h("dd", {}, latest && ready[ready.length - 1]
        ? fmtMs(ms(latest.started_at) - ready[ready.length - 1]) : "—"),
      h("dt", {}, "started"), h("dd", {}, fmtTime(latest ? latest.started_at : step.started_at)),
      h("dt", {}, "finished"), h("dd", {}, fmtTime(latest ? latest.finished_at : step.finished_at))),
    h("div", { class: "two-col" },
      h("div", {}, h("h4", {}, "Rendered params"),
        params == null ? h("p", { class: "muted" }, "not rendered yet")
          : jsonBlock(params, `Params of ${step.step_id}`)),
      h("div", {}, h("h4", {}, "Outputs"),
        step.outputs ? jsonBlock(step.outputs, `Outputs of ${step.step_id}`)
          : h("p", { class: "muted" }, "none"))),
    step.items ? itemsView(step) : null,
    h("h4", {}, latest ? `Logs (attempt ${latest.attempt})` : "Logs"),
    logsView(logs, `Logs of ${step.step_id}`),
    h("h4", {}, "Attempts"), attemptsView(stepAttempts, ready),
    h("div", { class: "form-actions step-actions" },
      button("Retry from this step", { class: "btn btn-small", disabled: !final,
        "aria-label": `Retry from step ${step.step_id}`,
        title: final ? null : "Available once the execution has ended",
        onclick: () => onRetryFrom(step.step_id) }))));
  return det;
}

// The chart is drawn for its box's width (one viewBox unit a pixel), so its text stays
// readable in a narrow card or on a phone.
const G_ROW = 24;
const G_TOP = 22;

/** The Gantt chart: one row per step; queue delay in grey, then one bar per attempt. */
export function timelineSvg(exe, byStep, readyOf, width = 640) {
  const steps = exe.steps || [];
  if (!steps.length) return h("p", { class: "empty" }, "No steps.");
  const t0 = ms(exe.created_at);
  let t1 = FINAL.has(exe.status) && exe.finished_at ? ms(exe.finished_at) : serverNow();
  for (const list of byStep.values()) {
    for (const a of list) t1 = Math.max(t1, ms(a.finished_at) || (a.status === "running" ? serverNow() : 0));
  }
  const span = Math.max(t1 - t0, 1);
  const G_W = Math.max(280, Math.round(width));
  const G_LABEL = G_W < 480 ? 84 : 120;
  const plot = G_W - G_LABEL - 8;
  const x = (t) => G_LABEL + ((Math.min(Math.max(t, t0), t1) - t0) / span) * plot;
  const height = G_TOP + steps.length * G_ROW + 6;
  const svg = s("svg", { class: "gantt", viewBox: `0 0 ${G_W} ${height}`, width: "100%",
    role: "img", "aria-label": `Timeline of the steps of execution ${exe.id}: queue delay and attempts` });
  const axis = s("g", { class: "gantt-axis" });
  for (let i = 0; i <= 4; i += 1) {
    const gx = G_LABEL + (plot * i) / 4;
    axis.append(s("line", { x1: gx, x2: gx, y1: G_TOP - 4, y2: height - 4, class: "gantt-grid" }),
      s("text", { x: gx, y: 12, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" },
        fmtMs((span * i) / 4)));
  }
  svg.append(axis);
  steps.forEach((st, row) => {
    const y = G_TOP + row * G_ROW;
    const list = byStep.get(st.step_id) || [];
    const ready = readyOf.get(st.step_id) || [];
    const g = s("g", { class: "gantt-row", "data-step-id": st.step_id, "data-status": st.status });
    g.append(s("text", { class: "gantt-label", x: 0, y: y + 15 },
      st.step_id.length > 14 ? `${st.step_id.slice(0, 13)}…` : st.step_id));
    list.forEach((a, i) => {
      const start = ms(a.started_at);
      const end = ms(a.finished_at) || serverNow();
      if (ready[i] && start > ready[i]) {
        g.append(s("rect", { class: "gantt-queue", x: x(ready[i]), y: y + 7, height: 8,
          width: Math.max(0.5, x(start) - x(ready[i])) },
        s("title", {}, `${st.step_id}: queued ${fmtMs(start - ready[i])} before attempt ${a.attempt}`)));
      }
      g.append(s("rect", { class: "gantt-bar", "data-status": a.status, "data-attempt": a.attempt,
        x: x(start), y: y + 3, height: 16, rx: 3, width: Math.max(2, x(end) - x(start)) },
      s("title", {}, `${st.step_id} attempt ${a.attempt}: ${a.status}, ${fmtMs(end - start)}`)));
    });
    const inFlight = list.some((a) => a.status === "running");
    if (st.status === "running" && st.started_at && !inFlight) {
      // Running, with its attempt not recorded yet: a bar from the step's start.
      const start = ms(st.started_at);
      g.append(s("rect", { class: "gantt-bar", "data-status": "running", x: x(start), y: y + 3,
        height: 16, rx: 3, width: Math.max(2, x(serverNow()) - x(start)) },
      s("title", {}, `${st.step_id}: running for ${fmtMs(serverNow() - start)}`)));
    } else if (!list.length) {
      g.append(s("text", { class: "gantt-none", x: G_LABEL + 4, y: y + 15 }, st.status));
    }
    svg.append(g);
  });
  return h("div", { class: "gantt-wrap" }, svg);
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
  let triggerName = null;
  if (first.trigger_id) {
    triggerName = await api.get(`/v1/event-triggers/${encodeURIComponent(first.trigger_id)}`, null,
      ctx.signal).then((t) => t.name, () => null);
  }

  const statusHost = h("span", { class: "status-host", "aria-live": "polite" });
  const marksHost = h("span", { class: "marks" });
  const live = liveBadge();
  const metaHost = h("dl", { class: "kv kv-inline exec-meta" });
  const errorHost = h("div", {});
  const dagHost = h("div", { class: "dag-host" });
  const timelineHost = h("div", { class: "timeline-host" });
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

  const grouped = () => {
    const byStep = new Map();
    for (const a of attempts) {
      if (!byStep.has(a.step_id)) byStep.set(a.step_id, []);
      byStep.get(a.step_id).push(a);
    }
    for (const list of byStep.values()) list.sort((a, b) => a.attempt - b.attempt);
    const finishedOf = new Map();
    for (const st of exe.steps || []) {
      const list = byStep.get(st.step_id) || [];
      const end = list.length ? ms(list[list.length - 1].finished_at) : ms(st.finished_at);
      if (end) finishedOf.set(st.step_id, end);
    }
    const readyOf = new Map((exe.steps || []).map((st) => [st.step_id,
      readyTimes(exe, st, byStep.get(st.step_id) || [], finishedOf)]));
    return { byStep, readyOf };
  };

  // Shrink the DAG to its card when that keeps its text readable; otherwise it scrolls.
  const fitDag = () => {
    const svg = dagHost.querySelector("svg.dag");
    const room = dagHost.clientWidth;
    if (!svg || !room) return;
    const natural = Number(svg.getAttribute("width"));
    svg.classList.toggle("dag-fit", natural > room && natural <= room * 1.5);
  };
  new ResizeObserver(fitDag).observe(dagHost);

  const drawTimeline = () => {
    const { byStep, readyOf } = grouped();
    replace(timelineHost, timelineSvg(exe, byStep, readyOf, timelineHost.clientWidth || 640));
  };
  let drawnWidth = 0;
  new ResizeObserver(() => {
    if (Math.abs(timelineHost.clientWidth - drawnWidth) < 8) return;
    drawnWidth = timelineHost.clientWidth;
    drawTimeline();
  }).observe(timelineHost);

  function draw(force = false) {
    const key = JSON.stringify([exe, attempts, selected]);
    if (!force && key === last) return;
    last = key;
    replace(statusHost, badge(exe.status, exe.status));
    statusHost.dataset.status = exe.status;
    replace(marksHost, executionMarks(exe));
    const final = FINAL.has(exe.status);
    cancel.disabled = final;
    retry.disabled = !(exe.status === "failed" || exe.status === "cancelled");
    replace(metaHost,
      h("dt", {}, "pipeline"), h("dd", {}, h("a", { href: `#/pipelines/${encodeURIComponent(exe.pipeline_id)}/steps` },
        pipelineName), ` (version ${exe.pipeline_version})`),
      h("dt", {}, "started by"), h("dd", {}, exe.trigger_id
        ? [h("span", {}, "trigger "), triggerName ? [h("span", { class: "trigger-name" }, triggerName), " "]
          : null, code(exe.trigger_id)] : exe.origin),
      h("dt", {}, "event"), h("dd", {}, exe.event_id
        ? h("a", { href: `#/events/${encodeURIComponent(exe.event_id)}` }, code(exe.event_id)) : "—"),
      (exe.delivery || 0) > 0 ? [h("dt", {}, "delivery"), h("dd", {},
        `replay delivery ${exe.delivery} of this event`)] : null,
      (exe.retry_count || 0) > 0 ? [h("dt", {}, "retried"), h("dd", {},
        `${exe.retry_count} time${exe.retry_count === 1 ? "" : "s"}`)] : null,
      h("dt", {}, "created"), h("dd", {}, fmtTime(exe.created_at)),
      h("dt", {}, "started"), h("dd", {}, fmtTime(exe.started_at)),
      h("dt", {}, "finished"), h("dd", {}, fmtTime(exe.finished_at)),
      h("dt", {}, "duration"), h("dd", {}, h("span", { class: "exec-duration" },
        durationEl(exe.started_at, final ? exe.finished_at : null))),
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
    fitDag();
    drawTimeline();
    for (const d of stepsHost.querySelectorAll("details")) {
      if (d.open) opened.add(d.dataset.stepId);
      else opened.delete(d.dataset.stepId);
    }
    const { byStep, readyOf } = grouped();
    for (const st of steps) {
      // A failed or running step opens once, by itself; after that the operator decides.
      if ((st.status === "failed" || st.status === "running") && !autoOpened.has(st.step_id)) {
        autoOpened.add(st.step_id);
        opened.add(st.step_id);
      }
    }
    replace(stepsHost, steps.map((st) => stepDetail(exe, st, byStep.get(st.step_id) || [],
      readyOf.get(st.step_id) || [], { open: opened.has(st.step_id), onRetryFrom: retryFrom })));
  }

  const doRetry = async (fromStep) => {
    retry.disabled = true;
    try {
      exe = await api.post(`${path}/retry`, fromStep ? { from_step: fromStep } : {});
      toast(fromStep ? `Execution ${id} retried from ${fromStep}` : `Execution ${id} retried`);
      draw(true);
    } catch (err) {
      toast(err.message, "error");
      draw(true);
    }
  };

  async function retryFrom(stepId) {
    const downstream = new Set([stepId]);
    let grew = true;
    while (grew) {
      grew = false;
      for (const st of exe.steps || []) {
        if (!downstream.has(st.step_id) && st.depends_on.some((d) => downstream.has(d))) {
          downstream.add(st.step_id);
          grew = true;
        }
      }
    }
    const ok = await confirmDialog({
      title: `Retry from step ${stepId}?`,
      body: `These steps run again, even if they succeeded: ${[...downstream].join(", ")}.`,
      confirmLabel: "Retry from this step",
    });
    if (ok) await doRetry(stepId);
  }

  cancel.addEventListener("click", async () => {
    const ok = await confirmDialog({
      title: `Cancel execution ${id}?`,
      body: "Steps that have not finished are cancelled. You can retry it afterwards.",
      confirmLabel: "Cancel execution", danger: true,
    });
    if (!ok) return;
    cancel.disabled = true;
    try {
      exe = await api.post(`${path}/cancel`);
      toast(`Execution ${id} cancelled`);
      draw(true);
    } catch (err) {
      toast(err.message, "error");
      draw(true);
    }
  });
  retry.addEventListener("click", async () => {
    const failed = (exe.steps || []).filter((st) => st.status === "failed" || st.status === "cancelled")
      .map((st) => st.step_id);
    const ok = await confirmDialog({
      title: `Retry execution ${id}?`,
      body: failed.length ? `The failed and cancelled steps run again: ${failed.join(", ")}.`
        : "Its unfinished steps run again.",
      confirmLabel: "Retry execution",
    });
    if (ok) await doRetry(null);
  });

  draw(true);
  // The server pushes each change; a running execution's bars and durations also tick locally.
  follow({ execution_id: id }, {
    execution: (data) => {
      exe = data.execution;
      attempts = data.attempts || [];
      draw();
    },
    error: (err) => toast(err.message, "error"),
  }, { signal: ctx.signal, onState: live.setState });
  ctx.every(1000, () => {
    if (!FINAL.has(exe.status)) drawTimeline();
    return true;
  });

  return h("section", { class: "page" },
    h("div", { class: "page-head" },
      h("div", {},
        h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
          h("a", { href: "#/executions" }, "Executions"), " / "),
        h("h1", {}, "Execution ", code(id)),
        h("p", { class: "status-line" }, "Status: ", statusHost, marksHost, live)),
      h("div", { class: "head-actions" }, cancel, retry)),
    metaHost, errorHost,
    h("div", { class: "exec-graphs" },
      h("section", { class: "card" }, h("h2", {}, "Steps"), legend(), dagHost),
      h("section", { class: "card" }, h("h2", {}, "Timeline"),
        h("p", { class: "hint" }, "Grey: waiting in the queue. Bars: attempts, coloured by status."),
        timelineHost)),
    h("h2", {}, "Step details"),
    stepsHost);
}
