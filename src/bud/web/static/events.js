// Events: the log with filters, one event's decisions, and the Publish test event form.

import { api, eventTypes, listAll } from "./api.js";
import {
  badge, button, code, empty, field, fmtTime, formError, h, jsonBlock, pretty, replace,
  setFieldError, setFormError, switchField, timeEl, toast,
} from "./dom.js";
import { jsonEditor } from "./editor.js";
import { verdictView } from "./triggers.js";

const OUTCOME_TEXT = {
  fired: "fired",
  filtered: "filtered out",
  disabled: "disabled",
  suppressed: "suppressed",
  would_fire: "would fire (test event)",
  error: "error",
};

function publishForm(ctx, types) {
  const typeSel = h("select", { id: "publish-event-type" },
    types.map((t) => h("option", { value: t.name }, t.name)));
  const exampleOf = (name) => (types.find((t) => t.name === name) || {}).example || {};
  const editor = jsonEditor({ id: "publish-data", rows: 8, value: pretty(exampleOf(typeSel.value)) });
  let touched = false;
  editor.textarea.addEventListener("input", () => {
    touched = true;
    const parsed = editor.parse();
    const bad = !parsed.ok ? `Not valid JSON: ${parsed.message}`
      : (!parsed.empty && (typeof parsed.value !== "object" || parsed.value === null ||
        Array.isArray(parsed.value))) ? "data must be a JSON object" : null;
    setFieldError(dataField, bad);
    editor.mark(bad && parsed.line ? [{ line: parsed.line, message: bad }] : []);
  });
  typeSel.addEventListener("change", () => {
    if (!touched || !editor.value.trim()) {
      editor.value = pretty(exampleOf(typeSel.value));
      touched = false;
    }
    setFieldError(dataField, null);
  });
  const reset = button("Use the example", { class: "btn btn-small",
    onclick: () => {
      editor.value = pretty(exampleOf(typeSel.value));
      touched = false;
      setFieldError(dataField, null);
    } });
  const typeField = field({ label: "Event type", input: typeSel });
  const dataField = field({ label: "Data (JSON)", input: editor.textarea, control: editor.el,
    className: "field-wide", after: h("div", { class: "field-tools" }, reset),
    hint: "The event's data; templates read it as {{ event.<field> }}." });
  const sourceInput = h("input", { id: "publish-source", type: "text", value: "ui", autocomplete: "off" });
  const sourceField = field({ label: "Source", input: sourceInput });
  const testField = switchField({ label: "Test event", id: "publish-test", checked: true,
    hint: "A test event is matched and recorded, but starts nothing (decisions say would_fire)." });
  const fallback = formError();
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Publish");
  const form = h("form", { class: "form", novalidate: true },
    h("div", { class: "form-row" }, typeField, sourceField), dataField, testField, fallback,
    h("div", { class: "form-actions" }, submit));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    setFormError(fallback, null);
    const parsed = editor.parse();
    if (!parsed.ok) {
      setFieldError(dataField, `Not valid JSON: ${parsed.message}`);
      editor.textarea.focus();
      return;
    }
    submit.disabled = true;
    try {
      const event = await api.post("/v1/events", {
        event_type: typeSel.value, data: parsed.empty ? {} : parsed.value,
        source: sourceInput.value.trim() || null, test: testField.input.checked,
      });
      toast(`Event ${event.event_id} published`);
      ctx.navigate(`#/events/${encodeURIComponent(event.event_id)}`);
    } catch (err) {
      const path = err.path || "";
      if (path.startsWith("data") || path.startsWith("event.data")) {
        setFieldError(dataField, err.message);
        const at = editor.lineOf(path.replace(/^event\./, ""), "data");
        if (at) editor.mark([{ line: at.line, message: err.message }]);
      } else if (path === "event_type" || path === "event.event_type") {
        setFieldError(typeField, err.message);
      } else if (path === "source" || path === "event.source") {
        setFieldError(sourceField, err.message);
      } else {
        setFormError(fallback, err.message);
      }
    } finally {
      submit.disabled = false;
    }
  });
  return { form, focus: () => typeSel.focus() };
}

export async function eventsPage(ctx) {
  ctx.setTitle("Events");
  const q = ctx.query;
  const types = await eventTypes();
  const typeSel = h("select", { id: "filter-event-type" }, h("option", { value: "" }, "All types"),
    types.map((t) => h("option", { value: t.name }, t.name)));
  typeSel.value = q.get("event_type") || "";
  const sourceInput = h("input", { id: "filter-source", type: "search", value: q.get("source") || "",
    placeholder: "any source", autocomplete: "off" });
  const testSel = h("select", { id: "filter-test" },
    h("option", { value: "" }, "Real and test"), h("option", { value: "false" }, "Real only"),
    h("option", { value: "true" }, "Test only"));
  testSel.value = q.get("test") || "";

  const tableHost = h("div", { "aria-live": "polite" });
  const more = button("Load more", { class: "btn", hidden: true });
  let items = [];
  let cursor = null;
  const params = () => ({ event_type: typeSel.value, source: sourceInput.value.trim(),
    test: testSel.value });
  const draw = () => {
    more.hidden = !cursor;
    if (!items.length) {
      replace(tableHost, empty("No events match. Publish one below, or from the SDK or CLI."));
      return;
    }
    replace(tableHost, h("div", { class: "table-wrap" }, h("table", { class: "table" },
      h("caption", { class: "sr-only" }, "Events"),
      h("thead", {}, h("tr", {}, ["Time", "Type", "Source", "Event", "Fired / candidates"].map(
        (c, i) => h("th", { scope: "col", class: i === 4 ? "num" : null }, c)))),
      h("tbody", {}, items.map((ev) => h("tr", { "data-event-id": ev.event_id },
        h("td", {}, timeEl(ev.timestamp)),
        h("td", {}, h("span", { class: "strong" }, ev.event_type),
          ev.test ? h("span", { class: "pill pill-test" }, "test") : null),
        h("td", {}, ev.source),
        h("td", {}, h("a", { href: `#/events/${encodeURIComponent(ev.event_id)}` }, code(ev.event_id))),
        h("td", { class: "num" }, `${ev.fired_count ?? 0} / ${ev.candidate_count ?? 0}`)))))));
  };
  const load = async () => {
    const page = await api.get("/v1/events", { ...params(), limit: 50 }, ctx.signal);
    items = page.items;
    cursor = page.next_cursor;
    draw();
  };
  const onFilter = async () => {
    ctx.setQuery(params());
    await load();
  };
  typeSel.addEventListener("change", onFilter);
  testSel.addEventListener("change", onFilter);
  let timer = null;
  sourceInput.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(onFilter, 300);
  });
  more.addEventListener("click", async () => {
    const page = await api.get("/v1/events", { ...params(), limit: 50, cursor }, ctx.signal);
    items = items.concat(page.items);
    cursor = page.next_cursor;
    draw();
  });
  await load();

  const publishHost = h("div", { class: "panel", id: "publish-host", hidden: true });
  const toggle = button("Publish test event", { class: "btn btn-primary", "aria-expanded": "false",
    "aria-controls": "publish-host" });
  toggle.addEventListener("click", () => {
    const open = publishHost.hidden;
    publishHost.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open) {
      const { form, focus } = publishForm(ctx, types);
      replace(publishHost, h("h2", {}, "Publish test event"), form);
      focus();
    }
  });

  return h("section", { class: "page" },
    h("div", { class: "page-head" },
      h("div", {}, h("h1", {}, "Events"),
        h("p", { class: "lead" }, "What happened on the platform, and which triggers it fired.")),
      toggle),
    publishHost,
    h("form", { class: "filters", role: "search", "aria-label": "Filter events",
      onsubmit: (e) => e.preventDefault() },
    field({ label: "Filter by type", input: typeSel }),
    field({ label: "Filter by source", input: sourceInput }),
    field({ label: "Show", input: testSel })),
    tableHost, more);
}

// ---------------------------------------------------------------------------------------

export async function eventPage(ctx, id) {
  const ev = await api.get(`/v1/events/${encodeURIComponent(id)}`, null, ctx.signal);
  ctx.setTitle(`Event ${id}`);
  const [pipelines, executions] = await Promise.all([
    listAll("/v1/pipelines", {}, 1000, ctx.signal).catch(() => []),
    ev.executions && ev.executions.length
      ? api.get("/v1/executions", { event_id: ev.event_id, limit: 200 }, ctx.signal)
        .then((p) => p.items, () => [])
      : Promise.resolve([]),
  ]);
  const names = new Map(pipelines.map((p) => [p.id, p.name]));
  const statusOf = new Map(executions.map((x) => [x.id, x.status]));
  const decisions = ev.decisions || [];

  const decisionCards = decisions.map((d) => {
    const verdict = d.detail && d.detail.verdict;
    return h("article", { class: `card decision decision-${d.outcome}`, "data-trigger-id": d.trigger_id,
      "data-outcome": d.outcome },
    h("div", { class: "decision-head" },
      badge(d.outcome, OUTCOME_TEXT[d.outcome] || d.outcome),
      h("span", {}, "Trigger ", code(d.trigger_id), " of ",
        h("a", { href: `#/pipelines/${encodeURIComponent(d.pipeline_id)}/triggers` },
          names.get(d.pipeline_id) || d.pipeline_id))),
    h("p", { class: "reason" }, h("span", { class: "muted" }, "Reason: "), d.reason || "—"),
    d.execution_id ? h("p", {}, "Started ",
      h("a", { href: `#/executions/${encodeURIComponent(d.execution_id)}` }, code(d.execution_id)),
      statusOf.has(d.execution_id) ? [" ", badge(statusOf.get(d.execution_id))] : null) : null,
    verdict && !verdict.matched ? h("details", { class: "verdict-details" },
      h("summary", {}, "Clause by clause"), verdictView(verdict, `Verdict for ${d.trigger_id}`)) : null);
  });

  const execList = (ev.executions || []).map((x) => h("li", {},
    h("a", { href: `#/executions/${encodeURIComponent(x)}` }, code(x)),
    statusOf.has(x) ? [" ", badge(statusOf.get(x))] : null));

  return h("section", { class: "page" },
    h("div", { class: "page-head" },
      h("div", {},
        h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
          h("a", { href: "#/events" }, "Events"), " / "),
        h("h1", {}, ev.event_type, ev.test ? h("span", { class: "pill pill-test" }, "test") : null),
        h("p", { class: "meta" }, code(ev.event_id), " · from ", ev.source, " · ", fmtTime(ev.timestamp)))),
    h("dl", { class: "kv kv-inline" },
      h("dt", {}, "fired"), h("dd", {}, `${ev.fired_count ?? 0} of ${ev.candidate_count ?? 0} candidate triggers`),
      h("dt", {}, "received"), h("dd", {}, fmtTime(ev.received_at)),
      h("dt", {}, "correlation"), h("dd", {}, code(ev.correlation_id || "—")),
      ev.causation_id ? [h("dt", {}, "caused by"), h("dd", {},
        h("a", { href: `#/events/${encodeURIComponent(ev.causation_id)}` }, code(ev.causation_id)))] : null,
      h("dt", {}, "depth"), h("dd", {}, String(ev.depth ?? 0))),
    h("div", { class: "two-col" },
      h("section", { class: "card" }, h("h2", {}, "Payload"), jsonBlock(ev.data, "Event data")),
      h("section", { class: "card" }, h("h2", {}, "Executions started"),
        execList.length ? h("ul", { class: "plain" }, execList) : empty("None."),
        execList.length > 1 ? h("p", {}, h("a", {
          href: `#/executions?event_id=${encodeURIComponent(ev.event_id)}` }, "See them in the list")) : null)),
    h("section", {}, h("h2", {}, "Trigger decisions"),
      decisions.length ? h("div", { class: "decisions" }, decisionCards)
        : empty(`No trigger listens for ${ev.event_type}.`)));
}
