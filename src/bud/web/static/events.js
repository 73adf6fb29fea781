// Events: the live log with filters (payload search, "started nothing"), bulk replay, the
// refused publishes (ingest error log), one event's decisions and its Replay, and the
// Publish test event form.

import { api, eventTypes, listAll } from "./api.js";
import {
  badge, button, code, confirmDialog, empty, field, fmtTime, formError, h, jsonBlock, pretty,
  replace, setFieldError, setFormError, switchField, timeEl, toast, zoneLabel,
} from "./dom.js";
import { jsonEditor } from "./editor.js";
import { follow, liveBadge } from "./live.js";
import { verdictView } from "./triggers.js";

const OUTCOME_TEXT = {
  fired: "fired",
  filtered: "filtered out",
  disabled: "disabled",
  suppressed: "suppressed",
  debounced: "debounced",
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

/** A datetime-local value (this browser's zone) as an ISO time, or "" when empty. */
function localToIso(value) {
  if (!value) return "";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString();
}

function triggerOptions(triggers, first) {
  return [h("option", { value: "" }, first), ...triggers.map((t) => h("option", { value: t.id },
    t.name ? `${t.name} (${t.id})` : `${t.event_type} · ${t.id}`))];
}

function replayResultView(result) {
  return h("div", { class: "replay-result", "data-fired": result.fired, role: "status" },
    h("p", { class: "strong" }, `Replayed ${result.events} event${result.events === 1 ? "" : "s"}: ` +
      `${result.fired} execution${result.fired === 1 ? "" : "s"} started.`),
    result.executions.length ? h("ul", { class: "plain" }, result.executions.map((x) => h("li", {},
      "Started ", h("a", { href: `#/executions/${encodeURIComponent(x)}` }, code(x))))) : null,
    (result.decisions || []).filter((d) => d.outcome !== "fired").slice(0, 10).map((d) =>
      h("p", { class: "muted small" }, code(d.trigger_id), ` ${d.outcome}: ${d.reason || ""}`)));
}

/** Bulk replay: every stored (non-test) event of a type received in a time range. */
function bulkReplayForm(types) {
  const typeSel = h("select", { id: "replay-event-type" }, types.map((t) => h("option", { value: t.name }, t.name)));
  const since = h("input", { id: "replay-since", type: "datetime-local", step: "1" });
  const until = h("input", { id: "replay-until", type: "datetime-local", step: "1" });
  const triggerSel = h("select", { id: "replay-trigger" }, triggerOptions([], "All its triggers"));
  const loadTriggers = async () => {
    const list = await listAll("/v1/event-triggers", { event_type: typeSel.value }).catch(() => []);
    replace(triggerSel, triggerOptions(list, "All its triggers"));
  };
  typeSel.addEventListener("change", loadTriggers);
  loadTriggers();
  const bypass = switchField({ label: "Run again where it already ran (bypass dedup)", id: "replay-bypass" });
  const fields = {
    event_type: field({ label: "Event type", input: typeSel }),
    since: field({ label: `Received from (${zoneLabel()})`, input: since, hint: "Optional." }),
    until: field({ label: `Received before (${zoneLabel()})`, input: until, hint: "Optional." }),
    trigger_id: field({ label: "Deliver to", input: triggerSel }),
  };
  const fallback = formError();
  const result = h("div", { "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Replay events");
  const form = h("form", { class: "form", novalidate: true, "aria-label": "Bulk replay" },
    h("div", { class: "form-row" }, fields.event_type, fields.trigger_id),
    h("div", { class: "form-row" }, fields.since, fields.until), bypass, fallback,
    h("div", { class: "form-actions" }, submit), result);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    for (const f of Object.values(fields)) setFieldError(f, null);
    setFormError(fallback, null);
    const range = [since.value ? `from ${fmtTime(localToIso(since.value))}` : "",
      until.value ? `before ${fmtTime(localToIso(until.value))}` : ""].filter(Boolean).join(" and ");
    const to = triggerSel.value ? `trigger ${triggerSel.value}` : "all their triggers";
    const ok = await confirmDialog({
      title: `Replay ${typeSel.value} events?`,
      body: `Every stored ${typeSel.value} event received ${range || "at any time"} (test events left out) ` +
        `is delivered again to ${to}.`,
      confirmLabel: "Replay events",
    });
    if (!ok) return;
    submit.disabled = true;
    try {
      const answer = await api.post("/v1/events/replay", {
        event_type: typeSel.value, since: localToIso(since.value) || null,
        until: localToIso(until.value) || null, trigger_id: triggerSel.value || null,
        bypass_dedup: bypass.input.checked,
      });
      replace(result, replayResultView(answer));
      toast(`Replayed ${answer.events} events, ${answer.fired} executions started`);
    } catch (err) {
      const key = Object.keys(fields).find((k) => (err.path || "").startsWith(k));
      if (key) setFieldError(fields[key], err.message);
      else setFormError(fallback, err.message);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function ingestErrorsView(items) {
  if (!items.length) return empty("No refused publishes.");
  return h("div", { class: "table-wrap" }, h("table", { class: "table table-cards ingest-errors" },
    h("caption", { class: "sr-only" }, "Refused publishes"),
    h("thead", {}, h("tr", {}, ["Time", "Source", "Type", "Error", "Body"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, items.map((r) => h("tr", { "data-ingest-error": r.seq },
      h("td", {}, timeEl(r.created_at)),
      h("td", {}, r.source || "—"),
      h("td", {}, r.event_type ? code(r.event_type) : "—"),
      h("td", {}, badge("error", String(r.status_code)), " ", h("span", { class: "err-text" }, r.error)),
      h("td", { class: "body-cell" }, h("code", { class: "clip" }, r.body || ""),
        r.body_truncated ? h("span", { class: "muted small" }, " (truncated)") : null))))));
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
  const startedSel = h("select", { id: "filter-started" },
    h("option", { value: "" }, "Any"), h("option", { value: "true" }, "Started nothing"),
    h("option", { value: "false" }, "Started something"));
  startedSel.value = q.get("started_nothing") || "";
  const pathInput = h("input", { id: "filter-data-path", type: "search", value: q.get("data_path") || "",
    placeholder: "e.g. model_source", autocomplete: "off", spellcheck: "false" });
  const valueInput = h("input", { id: "filter-data-value", type: "search", value: q.get("data_value") || "",
    placeholder: "e.g. hugging_face", autocomplete: "off", spellcheck: "false" });
  const pathField = field({ label: "Payload path", input: pathInput });
  const valueField = field({ label: "Payload value", input: valueInput,
    hint: "JSON when it parses (5, true, \"5\"), else text. Empty: the path exists." });

  const tableHost = h("div", { "aria-live": "polite" });
  const more = button("Load more", { class: "btn", hidden: true });
  const badgeEl = liveBadge();
  let items = [];
  let cursor = null;
  let fresh = new Set();
  const params = () => ({ event_type: typeSel.value, source: sourceInput.value.trim(),
    test: testSel.value, started_nothing: startedSel.value,
    data_path: pathInput.value.trim(), data_value: pathInput.value.trim() ? valueInput.value : "" });
  const draw = () => {
    more.hidden = !cursor;
    if (!items.length) {
      replace(tableHost, empty("No events match. Publish one below, or from the SDK or CLI."));
      return;
    }
    replace(tableHost, h("div", { class: "table-wrap" }, h("table", { class: "table table-cards" },
      h("caption", { class: "sr-only" }, "Events"),
      h("thead", {}, h("tr", {}, ["Time", "Type", "Source", "Event", "Fired / candidates"].map(
        (c, i) => h("th", { scope: "col", class: i === 4 ? "num" : null }, c)))),
      h("tbody", {}, items.map((ev) => h("tr", { "data-event-id": ev.event_id,
        class: fresh.has(ev.event_id) ? "is-new" : null },
      h("td", {}, timeEl(ev.timestamp)),
      h("td", {}, h("span", { class: "strong" }, ev.event_type),
        ev.test ? h("span", { class: "pill pill-test" }, "test") : null),
      h("td", {}, ev.source),
      h("td", {}, h("a", { href: `#/events/${encodeURIComponent(ev.event_id)}` }, code(ev.event_id))),
      h("td", { class: "num" }, `${ev.fired_count ?? 0} / ${ev.candidate_count ?? 0}`)))))));
    fresh = new Set();
  };
  let live = null;
  const subscribe = () => {
    if (live) live.abort();
    live = new AbortController();
    ctx.signal.addEventListener("abort", () => live.abort());
    follow({ topic: "events", ...params() }, {
      events: ({ items: changed }) => {
        const known = new Map(items.map((ev, i) => [ev.event_id, i]));
        const added = [];
        for (const ev of changed) {
          if (known.has(ev.event_id)) items[known.get(ev.event_id)] = ev;
          else added.push(ev);
        }
        if (added.length) {
          fresh = new Set(added.map((ev) => ev.event_id));
          items = [...added, ...items]; // the server sends them newest first
        }
        draw();
      },
    }, { signal: live.signal, onState: badgeEl.setState });
  };
  const load = async () => {
    setFieldError(pathField, null);
    try {
      const page = await api.get("/v1/events", { ...params(), limit: 50 }, ctx.signal);
      items = page.items;
      cursor = page.next_cursor;
    } catch (err) {
      if (err.path === "data_path") {
        setFieldError(pathField, err.message);
        items = [];
        cursor = null;
      } else {
        throw err;
      }
    }
    draw();
  };
  const onFilter = async () => {
    ctx.setQuery(params());
    await load();
    subscribe();
  };
  for (const el of [typeSel, testSel, startedSel]) el.addEventListener("change", onFilter);
  let timer = null;
  for (const el of [sourceInput, pathInput, valueInput]) {
    el.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(onFilter, 300);
    });
  }
  more.addEventListener("click", async () => {
    const page = await api.get("/v1/events", { ...params(), limit: 50, cursor }, ctx.signal);
    items = items.concat(page.items);
    cursor = page.next_cursor;
    draw();
  });
  await load();
  subscribe();

  const publishHost = h("div", { class: "panel", id: "publish-host", hidden: true });
  const replayHost = h("div", { class: "panel", id: "bulk-replay-host", hidden: true });
  const toggle = button("Publish test event", { class: "btn btn-primary", "aria-expanded": "false",
    "aria-controls": "publish-host" });
  const replayToggle = button("Replay events…", { class: "btn", "aria-expanded": "false",
    "aria-controls": "bulk-replay-host" });
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
  replayToggle.addEventListener("click", () => {
    const open = replayHost.hidden;
    replayHost.hidden = !open;
    replayToggle.setAttribute("aria-expanded", String(open));
    if (open) {
      replace(replayHost, h("h2", {}, "Replay stored events"),
        h("p", { class: "hint" }, "Deliver stored events of one type again, by the time the server received them."),
        bulkReplayForm(types));
      replayHost.querySelector("select").focus();
    }
  });

  const errorsHost = h("div", {});
  const errorsBox = h("details", { class: "card ingest-box", id: "ingest-errors" },
    h("summary", {}, h("h2", { class: "inline-h" }, "Refused publishes")), errorsHost);
  errorsBox.addEventListener("toggle", async () => {
    if (!errorsBox.open) return;
    try {
      replace(errorsHost, ingestErrorsView((await api.get("/v1/ingest-errors", { limit: 50 }, ctx.signal)).items));
    } catch (err) {
      replace(errorsHost, h("p", { class: "err-text" }, err.message));
    }
  });
  if (q.get("refused") === "1") errorsBox.open = true;

  return h("section", { class: "page" },
    h("div", { class: "page-head" },
      h("div", {}, h("h1", {}, "Events"),
        h("p", { class: "lead" }, "What happened on the platform, and which triggers it fired. ", badgeEl)),
      h("div", { class: "head-actions" }, toggle, replayToggle)),
    publishHost, replayHost,
    h("form", { class: "filters", role: "search", "aria-label": "Filter events",
      onsubmit: (e) => e.preventDefault() },
    field({ label: "Filter by type", input: typeSel }),
    field({ label: "Filter by source", input: sourceInput }),
    field({ label: "Show", input: testSel }),
    field({ label: "Started", input: startedSel }),
    pathField, valueField),
    tableHost, more, errorsBox);
}

// ---------------------------------------------------------------------------------------

function replayPanel(ev, triggers, onDone) {
  const triggerSel = h("select", { id: "event-replay-trigger" }, triggerOptions(triggers, "All its triggers"));
  const bypass = switchField({ label: "Run again even where it already ran (bypass dedup)",
    id: "event-replay-bypass" });
  const result = h("div", { "aria-live": "polite" });
  const fallback = formError();
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Replay now");
  const form = h("form", { class: "form", novalidate: true, "aria-label": "Replay this event" },
    h("h2", {}, "Replay this event"),
    h("p", { class: "hint" }, "Matches the event again and starts what its filters allow. " +
      "Rate limits, debounce and the circuit breaker do not apply to a replay."),
    h("div", { class: "form-row" }, field({ label: "Deliver to", input: triggerSel })), bypass,
    fallback, h("div", { class: "form-actions" }, submit), result);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    setFormError(fallback, null);
    submit.disabled = true;
    try {
      const answer = await api.post("/v1/events/replay", { event_ids: [ev.event_id],
        trigger_id: triggerSel.value || null, bypass_dedup: bypass.input.checked });
      replace(result, replayResultView(answer));
      toast(answer.fired ? `Replay started ${answer.fired} execution${answer.fired === 1 ? "" : "s"}`
        : "Replay started nothing");
      onDone(answer);
    } catch (err) {
      setFormError(fallback, err.message);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export async function eventPage(ctx, id) {
  const ev = await api.get(`/v1/events/${encodeURIComponent(id)}`, null, ctx.signal);
  ctx.setTitle(`Event ${id}`);
  const [pipelines, executions, triggers] = await Promise.all([
    listAll("/v1/pipelines", {}, 1000, ctx.signal).catch(() => []),
    ev.executions && ev.executions.length
      ? api.get("/v1/executions", { event_id: ev.event_id, limit: 200 }, ctx.signal)
        .then((p) => p.items, () => [])
      : Promise.resolve([]),
    listAll("/v1/event-triggers", { event_type: ev.event_type }, 1000, ctx.signal).catch(() => []),
  ]);
  const names = new Map(pipelines.map((p) => [p.id, p.name]));
  const triggerNames = new Map(triggers.map((t) => [t.id, t.name]));
  const statusOf = new Map(executions.map((x) => [x.id, x.status]));
  const deliveryOf = new Map(executions.map((x) => [x.id, x.delivery || 0]));
  const decisions = ev.decisions || [];

  const triggerLabel = (d) => {
    const name = d.trigger_name || triggerNames.get(d.trigger_id);
    return name ? [h("span", { class: "strong trigger-name" }, name), " ", code(d.trigger_id)]
      : code(d.trigger_id);
  };
  const decisionCards = decisions.map((d) => {
    const verdict = d.detail && d.detail.verdict;
    return h("article", { class: `card decision decision-${d.outcome}`, "data-trigger-id": d.trigger_id,
      "data-outcome": d.outcome },
    h("div", { class: "decision-head" },
      badge(d.outcome, OUTCOME_TEXT[d.outcome] || d.outcome),
      h("span", {}, "Trigger ", triggerLabel(d), " of ",
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
    statusOf.has(x) ? [" ", badge(statusOf.get(x))] : null,
    deliveryOf.get(x) ? [" ", h("span", { class: "pill pill-replay" }, `replay #${deliveryOf.get(x)}`)] : null));

  const replayHost = h("div", { class: "panel", id: "event-replay", hidden: true });
  const replay = button("Replay", { class: "btn", "aria-expanded": "false", "aria-controls": "event-replay",
    disabled: Boolean(ev.test), title: ev.test ? "A test event never starts anything, so it is not replayed" : null });
  replay.addEventListener("click", () => {
    const open = replayHost.hidden;
    replayHost.hidden = !open;
    replay.setAttribute("aria-expanded", String(open));
    if (open) {
      replace(replayHost, replayPanel(ev, triggers, () => {}));
      replayHost.querySelector("select").focus();
    }
  });

  return h("section", { class: "page" },
    h("div", { class: "page-head" },
      h("div", {},
        h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
          h("a", { href: "#/events" }, "Events"), " / "),
        h("h1", {}, ev.event_type, ev.test ? h("span", { class: "pill pill-test" }, "test") : null),
        h("p", { class: "meta" }, code(ev.event_id), " · from ", ev.source, " · ", fmtTime(ev.timestamp))),
      h("div", { class: "head-actions" }, replay)),
    replayHost,
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
