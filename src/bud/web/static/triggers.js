// The Triggers tab, worded as the product document: Add Event Trigger → Event Type, Filter,
// Enabled → Save. Also each trigger's toggle, Edit, Delete and Test (the verdict tree).

import { api, eventTypes, listAll } from "./api.js";
import {
  button, clear, code, compact, debounce, empty, field, fmtTime, formError, h, pretty, replace,
  s, setFieldError, setFormError, switchField, timeEl, toast,
} from "./dom.js";
import { jsonEditor } from "./editor.js";

const FILTER_EXAMPLE = '{"model_source": "hugging_face"}';
const FLOW_EXAMPLE = '{"rate_limit": {"max": 10, "per_seconds": 60}}';

// ---------------------------------------------------------------------------------------
// The verdict tree: one row per clause with path, op, expected, actual and outcome.

function groupName(op) {
  if (op === "$or") return "any of";
  if (op === "$not") return "none of (not)";
  return "all of";
}

function mark(matched) {
  return h("span", { class: matched ? "tick" : "cross", "aria-label": matched ? "passed" : "failed",
    role: "img" }, matched ? "✓" : "✗");
}

export function verdictView(verdict, caption = "Clauses") {
  if (!verdict || typeof verdict !== "object") return empty("No verdict.");
  const rows = [];
  const walk = (node, depth) => {
    if (Array.isArray(node.children)) {
      rows.push(h("tr", { class: "verdict-group", "data-outcome": node.matched ? "matched" : "failed" },
        h("td", {}, mark(node.matched)),
        h("td", { colspan: "5", class: `indent-${Math.min(depth, 6)}` },
          `${groupName(node.op)} (${node.op})${node.path ? ` at ${node.path}` : ""}`)));
      for (const child of node.children) walk(child, depth + 1);
      return;
    }
    const missing = node.outcome === "path_missing";
    rows.push(h("tr", { class: "verdict-leaf", "data-outcome": node.outcome, "data-path": node.path },
      h("td", {}, mark(node.matched)),
      h("td", { class: `indent-${Math.min(depth, 6)}` }, code(node.path)),
      h("td", {}, code(node.op)),
      h("td", {}, code(compact(node.expected))),
      h("td", {}, missing ? h("span", { class: "muted" }, "missing") : code(compact(node.actual))),
      h("td", {}, String(node.outcome || "").replaceAll("_", " "))));
  };
  const isPlainRoot = verdict.op === "$and" && !verdict.path && Array.isArray(verdict.children);
  if (isPlainRoot && verdict.children.length === 0) {
    return h("p", { class: "muted" }, "No clauses: an empty filter matches every event of the type.");
  }
  if (isPlainRoot) verdict.children.forEach((c) => walk(c, 0));
  else walk(verdict, 0);
  return h("div", { class: "table-wrap" }, h("table", { class: "table table-compact verdict" },
    h("caption", { class: "sr-only" }, caption),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Result")),
      h("th", { scope: "col" }, "Path"), h("th", { scope: "col" }, "Op"),
      h("th", { scope: "col" }, "Expected"), h("th", { scope: "col" }, "Actual"),
      h("th", { scope: "col" }, "Outcome"))),
    h("tbody", {}, rows)));
}

// ---------------------------------------------------------------------------------------
// The form (add or edit): Name, Event Type (with its fields), Filter, Enabled, flow control.
// As you type, the unsaved trigger is checked by the server (POST /v1/event-triggers/check):
// every error at its field, and the template warnings, before anything is saved. Test and
// Backtest run against the unsaved fields too.

/** The event type's data fields from its JSON schema: [{name, type, required, description}]. */
export function schemaFields(type) {
  const schema = (type && type.schema) || {};
  const props = schema.properties && typeof schema.properties === "object" ? schema.properties : {};
  const required = new Set(Array.isArray(schema.required) ? schema.required : []);
  return Object.entries(props).map(([name, prop]) => ({
    name,
    type: Array.isArray(prop && prop.type) ? prop.type.join(" | ") : (prop && prop.type) || "any",
    required: required.has(name),
    description: (prop && prop.description) || "",
    enum: prop && Array.isArray(prop.enum) ? prop.enum : null,
  }));
}

function fieldHints(type, onPick) {
  const fields = schemaFields(type);
  if (!fields.length) {
    return h("p", { class: "hint" }, type ? `${type.name} declares no fields; any data is accepted.` : "");
  }
  return h("div", { class: "field-hints" },
    h("p", { class: "hint" }, `Fields of ${type.name} events (click to add a clause):`),
    h("ul", { class: "chips", "aria-label": `Fields of ${type.name}` }, fields.map((f) => h("li", {},
      h("button", { type: "button", class: "chip", "data-field": f.name,
        title: [f.description, f.enum ? `one of ${f.enum.join(", ")}` : ""].filter(Boolean).join(" · ") || null,
        onclick: () => onPick(f) },
      h("span", { class: "chip-name" }, f.name), " ", h("span", { class: "chip-type" }, f.type),
      f.required ? h("span", { class: "sr-only" }, " (required)") : null)))));
}

function backtestView(result) {
  const pct = result.scanned ? Math.round((result.matched / result.scanned) * 100) : 0;
  const eventLink = (id) => h("a", { href: `#/events/${encodeURIComponent(id)}` }, code(id));
  return h("div", { class: "backtest", "data-scanned": result.scanned, "data-matched": result.matched },
    h("p", { class: "strong" }, result.scanned
      ? `Would have matched ${result.matched} of the last ${result.scanned} ${result.event_type} events (${pct}%).`
      : `No stored ${result.event_type} events to backtest against yet.`),
    result.examples && result.examples.length ? [h("h4", {}, "Matched, for example"),
      h("ul", { class: "plain" }, result.examples.map((e) => h("li", {}, eventLink(e.event_id), " ",
        h("span", { class: "muted" }, fmtTime(e.timestamp)))))] : null,
    result.near_misses && result.near_misses.length ? [h("h4", {}, "Near misses (failed on one clause)"),
      h("ul", { class: "plain" }, result.near_misses.map((e) => h("li", {}, eventLink(e.event_id), " ",
        h("span", { class: "muted" }, e.summary))))] : null);
}

function testAnswer(answer, label) {
  const verdictText = answer.matched
    ? (answer.would_fire ? "Matches: this event would fire the trigger"
      : "Matches, but the trigger is disabled: it would not fire")
    : "Does not match";
  return [
    h("p", { class: `test-answer ${answer.matched ? "is-match" : "is-miss"}`, "data-matched": String(answer.matched) },
      h("span", { class: answer.matched ? "tick" : "cross", "aria-hidden": "true" }, answer.matched ? "✓" : "✗"),
      " ", h("strong", {}, verdictText)),
    h("p", { class: "summary" }, "Summary: ", code(answer.summary)),
    verdictView(answer.verdict, label),
  ];
}

function triggerForm({ types, trigger, pipelineId, onSaved, onCancel }) {
  const editing = Boolean(trigger);
  const nameInput = h("input", { id: "trigger-name", type: "text", autocomplete: "off",
    value: (trigger && trigger.name) || "", placeholder: "e.g. Deploy new Hugging Face models" });
  const nameField = field({ label: "Name", input: nameInput, hint: "Optional; shown in decisions and lists." });
  const select = h("select", { id: "trigger-event-type" },
    types.map((t) => h("option", { value: t.name }, t.name)));
  const initialType = trigger ? trigger.event_type
    : (types.find((t) => t.name === "model.added") || types[0] || {}).name;
  if (initialType) select.value = initialType;
  const typeOf = () => types.find((x) => x.name === select.value);
  const typeHint = h("span", {}, (typeOf() || {}).description || "");
  const typeField = field({ label: "Event Type", input: select, hint: typeHint });

  const editor = jsonEditor({
    id: "trigger-filter", rows: 5, placeholder: FILTER_EXAMPLE,
    value: trigger && trigger.filter && Object.keys(trigger.filter).length ? pretty(trigger.filter) : "",
  });
  const hintsHost = h("div", {});
  const filterField = field({
    label: "Filter", input: editor.textarea, control: editor.el, className: "field-wide",
    after: hintsHost,
    hint: h("span", {}, "Optional JSON condition on the event data, e.g. ", code(FILTER_EXAMPLE),
      ". Operators such as ", code("$in"), ", ", code("$gt"), ", ", code("$prefix"), ", ",
      code("$exists"), ". Empty: every event of the type."),
  });
  const pick = (f) => {
    // Add `"field": <example value>` to the filter object and select the value.
    const parsed = editor.parse();
    const current = parsed.ok && !parsed.empty && parsed.value && typeof parsed.value === "object"
      && !Array.isArray(parsed.value) ? parsed.value : {};
    const example = (typeOf() || {}).example || {};
    const value = f.name in example ? example[f.name] : f.enum ? f.enum[0] : f.type === "boolean" ? true
      : f.type === "number" || f.type === "integer" ? 0 : "";
    editor.value = pretty({ ...current, [f.name]: value });
    editor.textarea.dispatchEvent(new Event("input"));
    editor.textarea.focus();
  };
  const drawHints = () => replace(hintsHost, fieldHints(typeOf(), pick));
  drawHints();

  const flowEditor = jsonEditor({
    id: "trigger-flow", rows: 4, placeholder: FLOW_EXAMPLE,
    value: trigger && trigger.flow && Object.keys(trigger.flow).length ? pretty(trigger.flow) : "",
  });
  const flowField = field({
    label: "Flow control", input: flowEditor.textarea, control: flowEditor.el,
    className: "field-wide",
    hint: h("span", {}, "Optional JSON: ", code("dedup"), ", ", code("rate_limit"), ", ",
      code("debounce"), ", ", code("concurrency"), ", ", code("circuit_breaker"),
      ". Every event held back is recorded with its reason."),
  });
  const flowBox = h("details", { class: "flow-box", open: Boolean(trigger && trigger.flow) },
    h("summary", {}, "Flow control (optional)"), flowField);
  const enabledField = switchField({ label: "Enabled", id: "trigger-enabled",
    checked: trigger ? trigger.enabled : true });
  const warningsHost = h("div", { class: "notices", "aria-live": "polite", id: "trigger-warnings" });
  const fallback = formError();

  // Try it before it is live: a sample event and a backtest over stored events.
  const sample = jsonEditor({ id: "trigger-sample", rows: 7, value: "" });
  const sampleField = field({ label: "Sample event", input: sample.textarea, control: sample.el,
    className: "field-wide",
    hint: "An event envelope or just its data, prefilled with the type's example. Nothing is fired." });
  const fillSample = () => {
    sample.value = pretty({ event_type: select.value, data: (typeOf() || {}).example || {} });
  };
  fillSample();
  const tryResult = h("div", { class: "test-result", "aria-live": "polite", id: "trigger-try-result" });
  const testBtn = button("Test", { class: "btn", "aria-label": "Test the unsaved trigger" });
  const backtestBtn = button("Backtest", { class: "btn", "aria-label": "Backtest the unsaved filter" });
  const tryBox = h("details", { class: "flow-box try-box", open: true },
    h("summary", {}, "Try it before saving"), sampleField,
    h("div", { class: "form-actions" }, testBtn, backtestBtn), tryResult);

  const save = h("button", { type: "submit", class: "btn btn-primary" }, "Save");
  const cancel = button("Cancel", { onclick: onCancel });

  const FIELDS = { name: nameField, event_type: typeField, filter: filterField, flow: flowField,
    enabled: enabledField, event: sampleField };

  /** Local checks first (JSON syntax); null when a field cannot even be parsed. */
  const readFilter = () => {
    const parsed = editor.parse();
    if (!parsed.ok) {
      setFieldError(filterField, `Filter is not valid JSON: ${parsed.message}`);
      editor.mark([{ line: parsed.line, message: parsed.message }]);
      return null;
    }
    if (!parsed.empty && (parsed.value === null || typeof parsed.value !== "object" ||
        Array.isArray(parsed.value))) {
      setFieldError(filterField, `filter must be a JSON object such as ${FILTER_EXAMPLE}`);
      editor.mark([{ line: 1, message: "not an object" }]);
      return null;
    }
    return parsed;
  };
  const readFlow = () => {
    const flow = flowEditor.parse();
    if (!flow.ok || (!flow.empty && (flow.value === null || typeof flow.value !== "object"
        || Array.isArray(flow.value)))) {
      setFieldError(flowField, flow.ok ? "flow control must be a JSON object"
        : `Flow control is not valid JSON: ${flow.message}`);
      flowBox.open = true;
      return null;
    }
    return flow;
  };
  const body = (filter, flow) => ({
    name: nameInput.value.trim() || null,
    event_type: select.value,
    filter: filter.empty ? {} : filter.value,
    enabled: enabledField.input.checked,
    flow: flow.empty ? null : flow.value,
  });

  /** Show the server's check: each error at its field, the warnings above the buttons. */
  const showCheck = (result, { focus = false } = {}) => {
    for (const key of ["event_type", "filter", "flow", "enabled"]) setFieldError(FIELDS[key], null);
    editor.mark([]);
    setFormError(fallback, null);
    const marks = [];
    let first = null;
    const elsewhere = [];
    for (const err of result.errors || []) {
      const path = err.path || "";
      const key = Object.keys(FIELDS).find((k) => path === k || path.startsWith(`${k}.`) || path.startsWith(`${k}[`));
      if (!key || key === "event") {
        elsewhere.push(err.message);
        continue;
      }
      setFieldError(FIELDS[key], err.message);
      if (key === "filter") {
        const at = editor.lineOf(path, "filter");
        if (at) marks.push({ line: at.line, message: err.message, at });
      }
      if (key === "flow") flowBox.open = true;
      first = first || { key, at: key === "filter" && marks.length ? marks[0].at : null };
    }
    editor.mark(marks);
    if (elsewhere.length) setFormError(fallback, elsewhere.join(" · "));
    const warnings = result.warnings || [];
    replace(warningsHost, warnings.length ? h("div", { class: "notice", "data-count": warnings.length },
      h("strong", {}, "Template warnings (the pipeline reads fields this event type may not carry):"),
      h("ul", {}, warnings.map((w) => h("li", {}, w)))) : null);
    if (focus && first) {
      if (first.at) editor.select(first.at);
      else FIELDS[first.key].input.focus();
    }
  };

  let seq = 0;
  const check = async ({ event, focus = false } = {}) => {
    const mine = ++seq;
    const filter = readFilter();
    const flow = readFlow();
    if (!filter || !flow) return null;
    setFieldError(filterField, null);
    setFieldError(flowField, null);
    const result = await api.post("/v1/event-triggers/check",
      { pipeline_id: pipelineId, ...body(filter, flow), ...(event !== undefined ? { event } : {}) });
    if (mine === seq) showCheck(result, { focus });
    return result;
  };
  const checkSoon = debounce(() => check().catch(() => {}), 350);

  editor.textarea.addEventListener("input", () => {
    if (readFilter()) {
      setFieldError(filterField, null);
      editor.mark([]);
      checkSoon();
    }
  });
  flowEditor.textarea.addEventListener("input", () => {
    if (readFlow()) {
      setFieldError(flowField, null);
      checkSoon();
    }
  });
  select.addEventListener("change", () => {
    replace(typeHint, (typeOf() || {}).description || "");
    setFieldError(typeField, null);
    drawHints();
    fillSample();
    checkSoon();
  });
  enabledField.input.addEventListener("change", checkSoon);

  testBtn.addEventListener("click", async () => {
    const parsed = sample.parse();
    if (!parsed.ok || parsed.empty) {
      setFieldError(sampleField, parsed.empty ? "A sample event is required" : `Not valid JSON: ${parsed.message}`);
      return;
    }
    setFieldError(sampleField, null);
    testBtn.disabled = true;
    try {
      const result = await check({ event: parsed.value });
      if (!result) return;
      const eventErr = (result.errors || []).find((e) => (e.path || "").startsWith("event"));
      if (eventErr) setFieldError(sampleField, eventErr.message);
      replace(tryResult, result.test ? testAnswer(result.test, "Verdict for the unsaved trigger")
        : h("p", { class: "muted" }, "Fix the errors above to test this trigger."));
    } catch (err) {
      setFormError(fallback, err.message);
    } finally {
      testBtn.disabled = false;
    }
  });
  backtestBtn.addEventListener("click", async () => {
    const filter = readFilter();
    if (!filter) return;
    backtestBtn.disabled = true;
    try {
      const result = await api.post("/v1/event-triggers/backtest",
        { event_type: select.value, filter: filter.empty ? {} : filter.value });
      replace(tryResult, backtestView(result));
    } catch (err) {
      showCheck({ errors: [{ path: err.path || "", message: err.message }] }, { focus: true });
    } finally {
      backtestBtn.disabled = false;
    }
  });

  const form = h("form", { class: "form trigger-form", novalidate: true, "aria-labelledby": "trigger-form-title" },
    h("h3", { id: "trigger-form-title" }, editing ? `Edit event trigger ${trigger.id}` : "Add Event Trigger"),
    h("div", { class: "form-row" }, nameField, typeField), filterField, enabledField, flowBox, tryBox,
    warningsHost, fallback,
    h("div", { class: "form-actions" }, save, cancel));

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    setFormError(fallback, null);
    const filter = readFilter();
    const flow = readFlow();
    if (!filter || !flow) {
      (filter ? flowEditor : editor).textarea.focus();
      return;
    }
    save.disabled = true;
    try {
      // Check first, so every problem shows at once and nothing half-valid goes live.
      const result = await check({ focus: true });
      if (!result || !result.valid) return;
      const payload = body(filter, flow);
      const saved = editing
        ? await api.patch(`/v1/event-triggers/${encodeURIComponent(trigger.id)}`, payload)
        : await api.post("/v1/event-triggers", { pipeline_id: pipelineId, ...payload });
      onSaved(saved, editing);
    } catch (err) {
      showCheck({ errors: [{ path: err.path || "", message: err.message }] }, { focus: true });
    } finally {
      save.disabled = false;
    }
  });
  checkSoon();
  return { form, focus: () => nameInput.focus() };
}

// ---------------------------------------------------------------------------------------
// Test: an event (prefilled with the type's example) → matched or not, and why.

function testPanel(trigger, types, close) {
  const type = types.find((t) => t.name === trigger.event_type);
  const example = { event_type: trigger.event_type, data: (type && type.example) || {} };
  const editor = jsonEditor({ id: `test-event-${trigger.id}`, rows: 9, value: pretty(example) });
  const eventField = field({ label: "Test event", input: editor.textarea, control: editor.el,
    className: "field-wide",
    hint: "An event envelope ({event_type, data, source…}) or just its data. Nothing is fired." });
  const result = h("div", { class: "test-result", "aria-live": "polite" });
  const run = h("button", { type: "submit", class: "btn btn-primary" }, "Run test");
  const form = h("form", { class: "form test-form", novalidate: true },
    h("h4", {}, `Test ${trigger.id} against an event`), eventField,
    h("div", { class: "form-actions" }, run, button("Close", { onclick: close })), result);
  editor.textarea.addEventListener("input", () => {
    const parsed = editor.parse();
    setFieldError(eventField, parsed.ok ? null : `Not valid JSON: ${parsed.message}`);
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const parsed = editor.parse();
    if (!parsed.ok || parsed.empty) {
      setFieldError(eventField, parsed.empty ? "An event is required" : `Not valid JSON: ${parsed.message}`);
      editor.textarea.focus();
      return;
    }
    setFieldError(eventField, null);
    run.disabled = true;
    try {
      const answer = await api.post(`/v1/event-triggers/${encodeURIComponent(trigger.id)}/test`,
        { event: parsed.value });
      replace(result, testAnswer(answer, `Verdict for ${trigger.id}`));
    } catch (err) {
      const path = err.path || "";
      setFieldError(eventField, err.message);
      const at = path ? editor.lineOf(path, "event") : null;
      if (at) editor.mark([{ line: at.line, message: err.message }]);
      clear(result);
    } finally {
      run.disabled = false;
    }
  });
  setTimeout(() => editor.textarea.focus(), 0);
  return form;
}

// ---------------------------------------------------------------------------------------
// Stats: decisions by outcome, suppressions by reason, rates, executions per hour (a chart
// drawn here), and the trigger's recent filtered-out events.

const HOURS = 24;

/** Bars of executions started per hour over the last day, oldest on the left. */
export function rateChart(times, now = Date.now()) {
  const counts = new Array(HOURS).fill(0);
  for (const iso of times) {
    const ago = Math.floor((now - new Date(iso).getTime()) / 3600e3);
    if (ago >= 0 && ago < HOURS) counts[HOURS - 1 - ago] += 1;
  }
  const W = 480;
  const H = 120;
  const top = 10;
  const bottom = 20;
  const max = Math.max(1, ...counts);
  const bw = W / HOURS;
  const svg = s("svg", { class: "rate-chart", viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img",
    "aria-label": `Executions started per hour over the last ${HOURS} hours: ${counts.reduce((a, b) => a + b, 0)} in all, at most ${max} in one hour` });
  svg.append(s("line", { class: "rate-axis", x1: 0, x2: W, y1: H - bottom, y2: H - bottom }));
  counts.forEach((n, i) => {
    const bh = ((H - top - bottom) * n) / max;
    svg.append(s("rect", { class: "rate-bar", x: i * bw + 1, width: bw - 2, y: H - bottom - bh,
      height: Math.max(n ? 1 : 0, bh), "data-count": n },
    s("title", {}, `${HOURS - 1 - i === 0 ? "this hour" : `${HOURS - 1 - i}h ago`}: ${n}`)));
  });
  for (const [i, label] of [[0, `${HOURS}h ago`], [HOURS / 2, `${HOURS / 2}h ago`], [HOURS - 1, "now"]]) {
    svg.append(s("text", { class: "rate-label", x: i * bw + (i === HOURS - 1 ? bw : 0), y: H - 5,
      "text-anchor": i === 0 ? "start" : i === HOURS - 1 ? "end" : "middle" }, label));
  }
  svg.append(s("text", { class: "rate-label", x: 2, y: top + 2 }, `max ${max}/h`));
  return svg;
}

function statsPanel(ctx, trigger, close) {
  const host = h("section", { class: "stats-panel", "aria-label": `Statistics of ${trigger.id}`,
    "data-trigger-id": trigger.id }, h("p", { class: "loading" }, "Loading statistics…"));
  const since = new Date(Date.now() - HOURS * 3600e3).toISOString();
  Promise.all([
    api.get(`/v1/event-triggers/${encodeURIComponent(trigger.id)}/stats`, null, ctx.signal),
    listAll("/v1/executions", { trigger_id: trigger.id, since }, 2000, ctx.signal),
    api.get("/v1/events", { filtered_by: trigger.id, limit: 10 }, ctx.signal).then((p) => p.items),
  ]).then(([st, runs, filtered]) => {
    const decisions = st.decisions || {};
    const suppressed = Object.entries(st.suppressed || {});
    const count = (k) => String(decisions[k] || 0);
    replace(host,
      h("h4", {}, `Statistics of ${trigger.name || trigger.id}`),
      h("dl", { class: "stat-grid" },
        [["fired", count("fired")], ["filtered out", count("filtered")],
          ["suppressed", count("suppressed")], ["disabled", count("disabled")],
          ["last minute", String((st.rate || {}).last_minute || 0)],
          ["last hour", String((st.rate || {}).last_hour || 0)]].map(([k, v]) =>
          h("div", { class: "stat", "data-stat": k }, h("dt", {}, k), h("dd", {}, v)))),
      h("p", { class: "hint" }, "Counted from the store: the same whichever server answers " +
        "(filtered-out events: those whose decision was explained)."),
      suppressed.length ? h("p", {}, "Suppressed by reason: ", suppressed.map(([reason, n], i) =>
        [i ? ", " : "", code(reason), ` ${n}`])) : h("p", { class: "muted" }, "Nothing suppressed."),
      h("p", { class: "muted" }, "Last fired ", timeEl(st.last_fired_at), "."),
      h("h4", {}, "Executions started per hour"), rateChart(runs.map((x) => x.created_at)),
      h("h4", {}, "Recent filtered-out events"),
      filtered.length ? h("ul", { class: "plain filtered-events" }, filtered.map((ev) => h("li", {},
        h("a", { href: `#/events/${encodeURIComponent(ev.event_id)}` }, code(ev.event_id)), " ",
        h("span", { class: "muted" }, fmtTime(ev.received_at || ev.timestamp)))))
        : h("p", { class: "muted" }, "None recently."),
      h("p", {}, h("a", { href: `#/events?event_type=${encodeURIComponent(trigger.event_type)}&started_nothing=true` },
        `All ${trigger.event_type} events that started nothing`)),
      h("div", { class: "form-actions" }, button("Close", { onclick: close })));
  }, (err) => {
    if (err && err.name === "AbortError") return;
    replace(host, h("p", { class: "err-text" }, err.message), button("Close", { onclick: close }));
  });
  return host;
}

// ---------------------------------------------------------------------------------------
// Schedule triggers: fired by a cron expression or an interval (docs/triggers.md#schedules)

/** "cron 0 9 * * 1-5 (Europe/Berlin)" or "every 300s". */
export function scheduleText(schedule) {
  if (!schedule) return "";
  if (schedule.interval_seconds != null) return `every ${schedule.interval_seconds}s`;
  return `cron ${schedule.cron} (${schedule.timezone || "UTC"})`;
}

function scheduleCell(t) {
  return [
    h("div", { class: "schedule-next" }, "Next run: ",
      t.next_run_at ? timeEl(t.next_run_at) : h("span", { class: "muted" }, "none (disabled)")),
    t.last_tick_at ? h("div", { class: "sub" }, "Last tick: ", timeEl(t.last_tick_at)) : null,
    t.skipped_ticks ? h("div", { class: "sub", role: "note" },
      `${t.skipped_ticks} missed tick${t.skipped_ticks === 1 ? "" : "s"} skipped`) : null,
  ];
}

/** The "Add Schedule" form: a cron expression in a time zone, or an interval. */
function scheduleForm({ pipelineId, onSaved, onCancel }) {
  const nameInput = h("input", { id: "schedule-name", type: "text", autocomplete: "off",
    placeholder: "e.g. Nightly report" });
  const nameField = field({ label: "Name", input: nameInput, hint: "Optional." });
  const kind = h("select", { id: "schedule-kind" },
    h("option", { value: "cron" }, "Cron expression"), h("option", { value: "interval" }, "Interval"));
  const kindField = field({ label: "Runs on", input: kind });
  const cronInput = h("input", { id: "schedule-cron", type: "text", autocomplete: "off",
    value: "0 9 * * 1-5", spellcheck: "false" });
  const cronField = field({ label: "Cron", input: cronInput,
    hint: h("span", {}, "Five fields: minute hour day-of-month month day-of-week, e.g. ",
      code("0 9 * * 1-5"), " (09:00 on weekdays).") });
  let zone = "UTC";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch (_err) { /* keep UTC */ }
  const zoneInput = h("input", { id: "schedule-timezone", type: "text", autocomplete: "off", value: zone });
  const zoneField = field({ label: "Time zone", input: zoneInput,
    hint: "An IANA name such as Europe/Berlin; the cron time is read in it." });
  const intervalInput = h("input", { id: "schedule-interval", type: "number", min: "1", step: "1",
    value: "300" });
  const intervalField = field({ label: "Every (seconds)", input: intervalInput });
  const enabledField = switchField({ label: "Enabled", id: "schedule-enabled", checked: true });
  const fallback = formError();
  const FIELDS = { "schedule.cron": cronField, "schedule.timezone": zoneField,
    "schedule.interval_seconds": intervalField, name: nameField };
  const showKind = () => {
    const cron = kind.value === "cron";
    cronField.hidden = !cron;
    zoneField.hidden = !cron;
    intervalField.hidden = cron;
  };
  kind.addEventListener("change", showKind);
  showKind();
  const save = h("button", { type: "submit", class: "btn btn-primary" }, "Save");
  const form = h("form", { class: "form", "aria-label": "Add schedule", novalidate: true },
    h("h3", {}, "Add Schedule"),
    h("p", { class: "hint" }, "Starts this pipeline on a clock, with a schedule.tick event; " +
      "a missed tick after downtime fires once."),
    nameField, kindField, cronField, zoneField, intervalField, enabledField, fallback,
    h("div", { class: "form-actions" }, save, button("Cancel", { onclick: onCancel })));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const f of Object.values(FIELDS)) setFieldError(f, null);
    setFormError(fallback, null);
    const schedule = kind.value === "cron"
      ? { cron: cronInput.value.trim(), timezone: zoneInput.value.trim() || "UTC" }
      : { interval_seconds: Number(intervalInput.value) };
    save.disabled = true;
    try {
      const saved = await api.post("/v1/event-triggers", { pipeline_id: pipelineId, schedule,
        name: nameInput.value.trim() || null, enabled: enabledField.input.checked });
      await onSaved(saved);
    } catch (err) {
      const target = FIELDS[err.path || ""];
      if (target) {
        setFieldError(target, err.message);
        target.input.focus();
      } else {
        setFormError(fallback, err.message);
      }
    } finally {
      save.disabled = false;
    }
  });
  return { form, focus: () => cronInput.focus() };
}

// ---------------------------------------------------------------------------------------
// The tab

export async function triggersTab(ctx, panel, pipeline, onCount = () => {}) {
  const [types, initial] = await Promise.all([
    eventTypes(),
    listAll("/v1/event-triggers", { pipeline_id: pipeline.id }, 1000, ctx.signal),
  ]);
  let triggers = initial;
  const formHost = h("div", { class: "panel", id: "trigger-form-host", hidden: true });
  const notices = h("div", { class: "notices", "aria-live": "polite" });
  const listHost = h("div", {});
  const add = button("Add Event Trigger", { class: "btn btn-primary", "aria-expanded": "false",
    "aria-controls": "trigger-form-host" });
  const addSchedule = button("Add Schedule", { class: "btn", "aria-expanded": "false",
    "aria-controls": "trigger-form-host" });

  const closeForm = () => {
    clear(formHost);
    formHost.hidden = true;
    add.setAttribute("aria-expanded", "false");
    addSchedule.setAttribute("aria-expanded", "false");
  };
  const openForm = (trigger) => {
    clear(notices);
    const { form, focus } = triggerForm({
      types, trigger, pipelineId: pipeline.id,
      onCancel: () => { closeForm(); add.focus(); },
      onSaved: async (saved, editing) => {
        closeForm();
        toast(editing ? `Event trigger ${saved.id} saved` : `Event trigger created: ${saved.id}`);
        if (saved.warnings && saved.warnings.length) {
          replace(notices, h("div", { class: "notice" },
            h("strong", {}, `Warnings for ${saved.id}:`),
            h("ul", {}, saved.warnings.map((w) => h("li", {}, w)))));
        }
        await reload();
      },
    });
    replace(formHost, form);
    formHost.hidden = false;
    add.setAttribute("aria-expanded", String(!trigger));
    addSchedule.setAttribute("aria-expanded", "false");
    focus();
    formHost.scrollIntoView({ block: "nearest" });
  };
  add.addEventListener("click", () => {
    if (!formHost.hidden && add.getAttribute("aria-expanded") === "true") closeForm();
    else openForm(null);
  });
  addSchedule.addEventListener("click", () => {
    if (!formHost.hidden && addSchedule.getAttribute("aria-expanded") === "true") {
      closeForm();
      return;
    }
    clear(notices);
    const { form, focus } = scheduleForm({
      pipelineId: pipeline.id,
      onCancel: () => { closeForm(); addSchedule.focus(); },
      onSaved: async (saved) => {
        closeForm();
        toast(`Schedule created: ${saved.id}`);
        await reload();
      },
    });
    replace(formHost, form);
    formHost.hidden = false;
    add.setAttribute("aria-expanded", "false");
    addSchedule.setAttribute("aria-expanded", "true");
    focus();
  });

  async function reload() {
    triggers = await listAll("/v1/event-triggers", { pipeline_id: pipeline.id }, 1000, ctx.signal);
    onCount(triggers.length);
    renderList();
  }

  function row(t) {
    const toggleId = `enabled-${t.id}`;
    const toggle = h("input", { type: "checkbox", role: "switch", class: "switch", id: toggleId,
      checked: t.enabled });
    const state = h("span", { class: "switch-state", "aria-hidden": "true" }, t.enabled ? "on" : "off");
    toggle.addEventListener("change", async () => {
      const want = toggle.checked;
      toggle.disabled = true;
      try {
        const saved = await api.post(
          `/v1/event-triggers/${encodeURIComponent(t.id)}/${want ? "enable" : "disable"}`);
        t.enabled = saved.enabled;
        toggle.checked = saved.enabled;
        tr.dataset.enabled = String(saved.enabled);
        state.textContent = saved.enabled ? "on" : "off";
        toast(`Trigger ${t.id} ${saved.enabled ? "enabled" : "disabled"}`);
      } catch (err) {
        toggle.checked = !want;
        toast(err.message, "error");
      } finally {
        toggle.disabled = false;
      }
    });
    const detail = h("tr", { class: "detail-row", hidden: true },
      h("td", { colspan: "6" }, h("div", { class: "detail-host" })));
    const test = button("Test", { class: "btn btn-small", "aria-expanded": "false",
      "aria-label": `Test trigger ${t.id}` });
    const stats = button("Stats", { class: "btn btn-small", "aria-expanded": "false",
      "aria-label": `Statistics of trigger ${t.id}` });
    let shown = null;
    const toggleDetail = (which, btn, make) => {
      const host = detail.querySelector(".detail-host");
      for (const b of [test, stats]) b.setAttribute("aria-expanded", "false");
      if (shown === which) {
        shown = null;
        detail.hidden = true;
        clear(host);
        return;
      }
      shown = which;
      detail.hidden = false;
      btn.setAttribute("aria-expanded", "true");
      replace(host, make(() => {
        shown = null;
        detail.hidden = true;
        btn.setAttribute("aria-expanded", "false");
        btn.focus();
      }));
    };
    test.addEventListener("click", () => toggleDetail("test", test, (close) => testPanel(t, types, close)));
    stats.addEventListener("click", () => toggleDetail("stats", stats, (close) => statsPanel(ctx, t, close)));
    const edit = button("Edit", { class: "btn btn-small", "aria-label": `Edit trigger ${t.id}`,
      onclick: () => openForm(t) });
    const del = button("Delete", { class: "btn btn-small btn-danger-ghost",
      "aria-label": `Delete trigger ${t.id}` });
    let armed = null;
    del.addEventListener("click", async () => {
      if (!armed) {
        del.textContent = "Confirm delete";
        del.setAttribute("aria-label", `Confirm delete of trigger ${t.id}`);
        del.classList.add("btn-danger");
        armed = setTimeout(() => {
          armed = null;
          del.textContent = "Delete";
          del.setAttribute("aria-label", `Delete trigger ${t.id}`);
          del.classList.remove("btn-danger");
        }, 4000);
        return;
      }
      clearTimeout(armed);
      try {
        await api.del(`/v1/event-triggers/${encodeURIComponent(t.id)}`);
        toast(`Trigger ${t.id} deleted`);
        await reload();
      } catch (err) {
        toast(err.message, "error");
      }
    });
    const hasFilter = t.filter && Object.keys(t.filter).length;
    const scheduled = t.kind === "schedule";
    const tr = h("tr", { "data-trigger-id": t.id, "data-enabled": String(t.enabled),
      "data-kind": t.kind || "event" },
      h("td", {}, h("span", { class: "strong" }, scheduled ? "Schedule" : t.event_type),
        scheduled ? h("div", { class: "schedule-text" }, code(scheduleText(t.schedule))) : null,
        t.name ? h("div", { class: "trigger-name" }, t.name) : null,
        h("div", { class: "sub" }, code(t.id))),
      h("td", { class: "filter-cell" }, scheduled ? scheduleCell(t)
        : hasFilter ? code(compact(t.filter))
        : h("span", { class: "muted" }, "none — every event"),
        t.flow && Object.keys(t.flow).length
          ? h("div", { class: "sub" }, "flow: ", code(compact(t.flow))) : null,
        t.tripped_reason ? h("div", { class: "sub err-text", role: "note" },
          `Tripped: ${t.tripped_reason}`) : null),
      h("td", {}, h("div", { class: "switch-row" }, toggle,
        h("label", { for: toggleId }, h("span", { class: "sr-only" }, `Enabled ${t.id}`), state))),
      h("td", { class: "num" }, String(t.fire_count ?? 0)),
      h("td", {}, timeEl(t.last_fired_at)),
      // A schedule is changed through the API or `bud triggers update --cron/--interval`.
      h("td", { class: "actions" }, scheduled ? null : test, stats, scheduled ? null : edit, del));
    return [tr, detail];
  }

  function renderList() {
    if (!triggers.length) {
      replace(listHost, empty("No event triggers yet. Click “Add Event Trigger” to start this " +
        "pipeline when an event happens."));
      return;
    }
    replace(listHost, h("div", { class: "table-wrap" }, h("table", { class: "table table-cards triggers" },
      h("caption", { class: "sr-only" }, "Event triggers"),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Event type"), h("th", { scope: "col" }, "Filter / schedule"),
        h("th", { scope: "col" }, "Enabled"), h("th", { scope: "col", class: "num" }, "Fired"),
        h("th", { scope: "col" }, "Last fired"), h("th", { scope: "col" }, "Actions"))),
      h("tbody", {}, triggers.map(row)))));
  }

  renderList();
  replace(panel,
    h("div", { class: "section-head" }, h("h2", {}, "Event triggers"),
      h("div", { class: "form-actions" }, add, addSchedule)),
    formHost, notices, listHost);
}
