// The Triggers tab, worded as the product document: Add Event Trigger → Event Type, Filter,
// Enabled → Save. Also each trigger's toggle, Edit, Delete and Test (the verdict tree).

import { api, eventTypes, listAll } from "./api.js";
import {
  button, clear, code, compact, empty, field, formError, h, pretty, replace, setFieldError,
  setFormError, switchField, timeEl, toast,
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
// The form (add or edit)

function triggerForm({ types, trigger, pipelineId, onSaved, onCancel }) {
  const editing = Boolean(trigger);
  const select = h("select", { id: "trigger-event-type" },
    types.map((t) => h("option", { value: t.name }, t.name)));
  const initialType = trigger ? trigger.event_type
    : (types.find((t) => t.name === "model.added") || types[0] || {}).name;
  if (initialType) select.value = initialType;
  const describe = () => {
    const t = types.find((x) => x.name === select.value);
    return t && t.description ? t.description : "";
  };
  const typeHint = h("span", {}, describe());
  const typeField = field({ label: "Event Type", input: select, hint: typeHint });
  select.addEventListener("change", () => {
    replace(typeHint, describe());
    setFieldError(typeField, null);
  });

  const editor = jsonEditor({
    id: "trigger-filter", rows: 5, placeholder: FILTER_EXAMPLE,
    value: trigger && trigger.filter && Object.keys(trigger.filter).length ? pretty(trigger.filter) : "",
  });
  const filterField = field({
    label: "Filter", input: editor.textarea, control: editor.el, className: "field-wide",
    hint: h("span", {}, "Optional JSON condition on the event data, e.g. ", code(FILTER_EXAMPLE),
      ". Operators such as ", code("$in"), ", ", code("$gt"), ", ", code("$prefix"), ", ",
      code("$exists"), ". Empty: every event of the type."),
  });
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
  const fallback = formError();
  const save = h("button", { type: "submit", class: "btn btn-primary" }, "Save");
  const cancel = button("Cancel", { onclick: onCancel });

  // Validate JSON syntax as you type.
  const checkSyntax = () => {
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
    setFieldError(filterField, null);
    editor.mark([]);
    return parsed;
  };
  editor.textarea.addEventListener("input", checkSyntax);

  const form = h("form", { class: "form trigger-form", novalidate: true, "aria-labelledby": "trigger-form-title" },
    h("h3", { id: "trigger-form-title" }, editing ? `Edit event trigger ${trigger.id}` : "Add Event Trigger"),
    typeField, filterField, enabledField, flowBox, fallback,
    h("div", { class: "form-actions" }, save, cancel));

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    setFormError(fallback, null);
    setFieldError(typeField, null);
    const parsed = checkSyntax();
    if (!parsed) {
      editor.textarea.focus();
      return;
    }
    const flow = flowEditor.parse();
    if (!flow.ok || (!flow.empty && (flow.value === null || typeof flow.value !== "object"
        || Array.isArray(flow.value)))) {
      setFieldError(flowField, flow.ok ? "flow control must be a JSON object"
        : `Flow control is not valid JSON: ${flow.message}`);
      flowBox.open = true;
      flowEditor.textarea.focus();
      return;
    }
    setFieldError(flowField, null);
    const body = {
      event_type: select.value,
      filter: parsed.empty ? {} : parsed.value,
      enabled: enabledField.input.checked,
      flow: flow.empty ? null : flow.value,
    };
    save.disabled = true;
    try {
      const saved = editing
        ? await api.patch(`/v1/event-triggers/${encodeURIComponent(trigger.id)}`, body)
        : await api.post("/v1/event-triggers", { pipeline_id: pipelineId, ...body });
      onSaved(saved, editing);
    } catch (err) {
      const path = err.path || "";
      if (path === "filter" || path.startsWith("filter.") || path.startsWith("filter[")) {
        setFieldError(filterField, err.message);
        const at = editor.lineOf(path, "filter");
        editor.mark(at ? [{ line: at.line, message: err.message }] : []);
        if (at) editor.select(at);
        else editor.textarea.focus();
      } else if (path === "flow" || path.startsWith("flow.")) {
        setFieldError(flowField, err.message);
        flowBox.open = true;
        flowEditor.textarea.focus();
      } else if (path === "event_type") {
        setFieldError(typeField, err.message);
        select.focus();
      } else if (path === "enabled") {
        setFieldError(enabledField, err.message);
      } else {
        setFormError(fallback, err.message);
      }
    } finally {
      save.disabled = false;
    }
  });
  return { form, focus: () => select.focus() };
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
      const verdictText = answer.matched
        ? (answer.would_fire ? "Matches: this event would fire the trigger"
          : "Matches, but the trigger is disabled: it would not fire")
        : "Does not match";
      replace(result,
        h("p", { class: `test-answer ${answer.matched ? "is-match" : "is-miss"}`, "data-matched": String(answer.matched) },
          h("span", { class: answer.matched ? "tick" : "cross", "aria-hidden": "true" }, answer.matched ? "✓" : "✗"),
          " ", h("strong", {}, verdictText)),
        h("p", { class: "summary" }, "Summary: ", code(answer.summary)),
        verdictView(answer.verdict, `Verdict for ${trigger.id}`));
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

  const closeForm = () => {
    clear(formHost);
    formHost.hidden = true;
    add.setAttribute("aria-expanded", "false");
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
    focus();
    formHost.scrollIntoView({ block: "nearest" });
  };
  add.addEventListener("click", () => {
    if (!formHost.hidden && add.getAttribute("aria-expanded") === "true") closeForm();
    else openForm(null);
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
    test.addEventListener("click", () => {
      const open = detail.hidden;
      detail.hidden = !open;
      test.setAttribute("aria-expanded", String(open));
      const host = detail.querySelector(".detail-host");
      if (open) {
        replace(host, testPanel(t, types, () => {
          detail.hidden = true;
          test.setAttribute("aria-expanded", "false");
          test.focus();
        }));
      } else {
        clear(host);
      }
    });
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
    const tr = h("tr", { "data-trigger-id": t.id, "data-enabled": String(t.enabled) },
      h("td", {}, h("span", { class: "strong" }, t.event_type),
        h("div", { class: "sub" }, code(t.id)), t.name ? h("div", { class: "sub" }, t.name) : null),
      h("td", { class: "filter-cell" }, hasFilter ? code(compact(t.filter))
        : h("span", { class: "muted" }, "none — every event"),
        t.flow && Object.keys(t.flow).length
          ? h("div", { class: "sub" }, "flow: ", code(compact(t.flow))) : null,
        t.tripped_reason ? h("div", { class: "sub err-text", role: "note" },
          `Tripped: ${t.tripped_reason}`) : null),
      h("td", {}, h("div", { class: "switch-row" }, toggle,
        h("label", { for: toggleId }, h("span", { class: "sr-only" }, `Enabled ${t.id}`), state))),
      h("td", { class: "num" }, String(t.fire_count ?? 0)),
      h("td", {}, timeEl(t.last_fired_at)),
      h("td", { class: "actions" }, test, edit, del));
    return [tr, detail];
  }

  function renderList() {
    if (!triggers.length) {
      replace(listHost, empty("No event triggers yet. Click “Add Event Trigger” to start this " +
        "pipeline when an event happens."));
      return;
    }
    replace(listHost, h("div", { class: "table-wrap" }, h("table", { class: "table triggers" },
      h("caption", { class: "sr-only" }, "Event triggers"),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Event type"), h("th", { scope: "col" }, "Filter"),
        h("th", { scope: "col" }, "Enabled"), h("th", { scope: "col", class: "num" }, "Fired"),
        h("th", { scope: "col" }, "Last fired"), h("th", { scope: "col" }, "Actions"))),
      h("tbody", {}, triggers.map(row)))));
  }

  renderList();
  replace(panel,
    h("div", { class: "section-head" }, h("h2", {}, "Event triggers"), add),
    formHost, notices, listHost);
}
