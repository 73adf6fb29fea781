// Pipelines: the list, the new-pipeline form, and the pipeline page with its four tabs.

import { api, eventTypes, listAll } from "./api.js";
import { dagSvg } from "./dag.js";
import {
  badge, button, clear, code, debounce, empty, field, formError, h, jsonBlock, pretty,
  replace, setFieldError, setFormError, timeEl, toast,
} from "./dom.js";
import { jsonEditor } from "./editor.js";
import { executionsList } from "./executions.js";
import { triggersTab } from "./triggers.js";

const TABS = [
  ["steps", "Steps"],
  ["triggers", "Triggers"],
  ["executions", "Executions"],
  ["definition", "Definition"],
];

const TEMPLATE = {
  steps: [
    { id: "notify", action: "log", params: { message: "Model {{ event.model_name }} was added" } },
  ],
};

// ---------------------------------------------------------------------------------------
// Definition validation shown at the field: every error on its line, click to select it.

function definitionErrors(defField, editor, errors) {
  const error = defField.error;
  if (!errors || !errors.length) {
    setFieldError(defField, null);
    editor.mark([]);
    return;
  }
  const marks = [];
  const list = h("ul", { class: "error-list" });
  for (const e of errors) {
    const at = editor.lineOf(e.path);
    if (at) marks.push({ line: at.line, message: e.message });
    const where = at ? `Line ${at.line}` : null;
    list.append(h("li", {},
      at ? h("button", { type: "button", class: "link-btn", onclick: () => editor.select(at) },
        where) : null,
      at ? " " : null,
      e.message || String(e)));
  }
  setFieldError(defField, "x");
  replace(error, list);
  editor.mark(marks);
}

/** Live validation: JSON syntax at once, then the server's validator, debounced. */
function liveValidation(defField, editor, status) {
  let seq = 0;
  const remote = debounce(async (definition) => {
    const mine = ++seq;
    try {
      const result = await api.post("/v1/pipelines/validate", { definition });
      if (mine !== seq) return;
      definitionErrors(defField, editor, result.valid ? [] : result.errors);
      replace(status, result.valid
        ? h("span", { class: "ok-text" }, "✓ Definition is valid")
        : h("span", { class: "err-text" },
          `✗ ${result.errors.length} problem${result.errors.length === 1 ? "" : "s"}`));
    } catch (err) {
      if (mine === seq) replace(status, h("span", { class: "muted" }, `Not validated: ${err.message}`));
    }
  }, 400);
  const check = () => {
    const parsed = editor.parse();
    if (!parsed.ok || parsed.empty) {
      seq += 1;
      remote.cancel();
      const message = parsed.empty ? "A definition is required" : `Invalid JSON: ${parsed.message}`;
      definitionErrors(defField, editor, [{ message }]);
      editor.mark(parsed.line ? [{ line: parsed.line, message }] : []);
      replace(status, h("span", { class: "err-text" }, "✗ Invalid JSON"));
      return null;
    }
    replace(status, h("span", { class: "muted" }, "Validating…"));
    remote(parsed.value);
    return parsed.value;
  };
  return check;
}

function showSaveError(err, fields, defField, editor, fallback) {
  const path = err.path;
  if (path === "name" || path === "description") {
    setFieldError(fields[path], err.message);
    fields[path].input.focus();
    return;
  }
  const errors = Array.isArray(err.details.errors) && err.details.errors.length
    ? err.details.errors : null;
  if (errors || (err.status === 422 && path)) {
    definitionErrors(defField, editor, errors || [{ path, message: err.message }]);
    editor.textarea.focus();
    return;
  }
  setFormError(fallback, err.message);
}

function definitionForm({ idPrefix, name = "", description = "", definition, submitLabel, onSubmit }) {
  const nameInput = h("input", { id: `${idPrefix}-name`, type: "text", required: true, value: name,
    autocomplete: "off" });
  const descInput = h("input", { id: `${idPrefix}-description`, type: "text", value: description || "",
    autocomplete: "off" });
  const editor = jsonEditor({ id: `${idPrefix}-definition`, rows: 16, value: pretty(definition) });
  const nameField = field({ label: "Name", input: nameInput });
  const descField = field({ label: "Description", input: descInput, hint: "Optional." });
  const status = h("p", { class: "validation-status", "aria-live": "polite" });
  const defField = field({
    label: "Definition (JSON)", input: editor.textarea, control: editor.el, className: "field-wide",
    hint: "{\"steps\": [{\"id\", \"action\", \"params\", \"depends_on\"}]} — validated as you type.",
    after: status,
  });
  const fallback = formError();
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, submitLabel);
  const form = h("form", { class: "form", novalidate: true },
    h("div", { class: "form-row" }, nameField, descField), defField, fallback,
    h("div", { class: "form-actions" }, submit));
  const check = liveValidation(defField, editor, status);
  editor.textarea.addEventListener("input", check);
  nameInput.addEventListener("input", () => setFieldError(nameField, null));
  check();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    setFormError(fallback, null);
    setFieldError(nameField, null);
    if (!nameInput.value.trim()) {
      setFieldError(nameField, "name: a pipeline needs a non-empty name");
      nameInput.focus();
      return;
    }
    const parsed = editor.parse();
    if (!parsed.ok || parsed.empty) {
      check();
      editor.textarea.focus();
      return;
    }
    submit.disabled = true;
    try {
      await onSubmit({ name: nameInput.value.trim(), description: descInput.value.trim() || null,
        definition: parsed.value });
    } catch (err) {
      showSaveError(err, { name: nameField, description: descField }, defField, editor, fallback);
    } finally {
      submit.disabled = false;
    }
  });
  return { form, editor, nameInput };
}

// ---------------------------------------------------------------------------------------
// The list

export async function pipelinesPage(ctx) {
  ctx.setTitle("Pipelines");
  const pipelines = await listAll("/v1/pipelines", {}, 1000, ctx.signal);
  const formHost = h("div", { class: "panel", id: "new-pipeline", hidden: true });
  const toggle = button("New pipeline", { class: "btn btn-primary", "aria-expanded": "false",
    "aria-controls": "new-pipeline" });
  toggle.addEventListener("click", () => {
    const open = formHost.hidden;
    formHost.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open && !formHost.firstChild) {
      const { form, nameInput } = definitionForm({
        idPrefix: "new-pipeline", definition: TEMPLATE, submitLabel: "Create pipeline",
        onSubmit: async (body) => {
          const created = await api.post("/v1/pipelines", body);
          toast(`Pipeline ${created.name} created`);
          ctx.navigate(`#/pipelines/${encodeURIComponent(created.id)}/steps`);
        },
      });
      formHost.append(h("h2", {}, "New pipeline"), form);
      nameInput.focus();
    } else if (open) {
      formHost.querySelector("input").focus();
    }
  });

  const rows = pipelines.map((p) => {
    const last = p.last_execution;
    return h("tr", { "data-pipeline-id": p.id },
      h("td", {}, h("a", { href: `#/pipelines/${encodeURIComponent(p.id)}/steps`, class: "strong" },
        p.name), h("div", { class: "sub" }, code(p.id))),
      h("td", { class: "num" }, `v${p.version}`),
      h("td", { class: "num" }, h("a", { href: `#/pipelines/${encodeURIComponent(p.id)}/triggers` },
        String(p.trigger_count ?? 0))),
      h("td", {}, last
        ? h("span", { class: "cell-stack" }, badge(last.status),
          h("a", { href: `#/executions/${encodeURIComponent(last.id)}` }, timeEl(last.created_at)))
        : h("span", { class: "muted" }, "never run")),
      h("td", {}, timeEl(p.updated_at)));
  });
  return h("section", { class: "page" },
    h("div", { class: "page-head" },
      h("div", {}, h("h1", {}, "Pipelines"),
        h("p", { class: "lead" }, "DAGs of actions, started by event triggers.")),
      toggle),
    formHost,
    pipelines.length
      ? h("div", { class: "table-wrap" }, h("table", { class: "table table-cards" },
        h("caption", { class: "sr-only" }, "Pipelines"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"),
          h("th", { scope: "col", class: "num" }, "Version"),
          h("th", { scope: "col", class: "num" }, "Triggers"),
          h("th", { scope: "col" }, "Last execution"), h("th", { scope: "col" }, "Updated"))),
        h("tbody", {}, rows)))
      : empty("No pipelines yet. Create one with “New pipeline”, the SDK or the CLI."));
}

// ---------------------------------------------------------------------------------------
// The pipeline page

function tablist(pipelineId, active) {
  const buttons = TABS.map(([key, label]) => h("button", {
    type: "button", role: "tab", id: `tab-${key}`, "aria-selected": String(key === active),
    "aria-controls": "tab-panel", tabindex: key === active ? "0" : "-1", class: "tab",
    onclick: () => { location.hash = `#/pipelines/${encodeURIComponent(pipelineId)}/${key}`; },
  }, label));
  const list = h("div", { role: "tablist", "aria-label": "Pipeline sections", class: "tabs" }, buttons);
  list.addEventListener("keydown", (e) => {
    const i = buttons.indexOf(document.activeElement);
    if (i < 0) return;
    let next = null;
    if (e.key === "ArrowRight") next = buttons[(i + 1) % buttons.length];
    else if (e.key === "ArrowLeft") next = buttons[(i - 1 + buttons.length) % buttons.length];
    else if (e.key === "Home") next = buttons[0];
    else if (e.key === "End") next = buttons[buttons.length - 1];
    if (next) {
      e.preventDefault();
      next.focus();
      next.click();
    }
  });
  return list;
}

export async function pipelinePage(ctx, id, tab) {
  if (!TABS.some(([k]) => k === tab)) tab = "steps";
  const pipeline = await api.get(`/v1/pipelines/${encodeURIComponent(id)}`, null, ctx.signal);
  ctx.setTitle(`${pipeline.name} · ${TABS.find(([k]) => k === tab)[1]}`);
  const panel = h("div", { role: "tabpanel", id: "tab-panel", "aria-labelledby": `tab-${tab}`,
    class: "tab-panel", tabindex: "0" });

  const runHost = h("div", { class: "panel", id: "run-panel", hidden: true });
  const run = button("Run now", { class: "btn", "aria-expanded": "false", "aria-controls": "run-panel" });
  run.addEventListener("click", async () => {
    const open = runHost.hidden;
    runHost.hidden = !open;
    run.setAttribute("aria-expanded", String(open));
    if (open) {
      replace(runHost, runForm(ctx, pipeline, await eventTypes().catch(() => []), () => {
        runHost.hidden = true;
        run.setAttribute("aria-expanded", "false");
        run.focus();
      }));
      runHost.querySelector("textarea").focus();
    }
  });
  const del = button("Delete pipeline", { class: "btn btn-danger-ghost" });
  let armed = false;
  del.addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      del.textContent = "Confirm delete";
      del.classList.add("btn-danger");
      setTimeout(() => {
        armed = false;
        del.textContent = "Delete pipeline";
        del.classList.remove("btn-danger");
      }, 4000);
      return;
    }
    try {
      await api.del(`/v1/pipelines/${encodeURIComponent(id)}`);
      toast(`Pipeline ${pipeline.name} deleted`);
      ctx.navigate("#/pipelines");
    } catch (err) {
      toast(err.message, "error");
    }
  });

  const countText = h("span", {});
  const setCount = (n) => { countText.textContent = `${n} trigger${n === 1 ? "" : "s"}`; };
  setCount(pipeline.trigger_count ?? 0);
  const head = h("div", { class: "page-head" },
    h("div", {},
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
        h("a", { href: "#/pipelines" }, "Pipelines"), " / "),
      h("h1", {}, pipeline.name),
      h("p", { class: "meta" }, code(pipeline.id), ` · version ${pipeline.version} · `,
        countText, " · updated ", timeEl(pipeline.updated_at)),
      pipeline.description ? h("p", { class: "lead" }, pipeline.description) : null),
    h("div", { class: "head-actions" }, run, del));

  if (tab === "steps") stepsTab(panel, pipeline);
  else if (tab === "triggers") await triggersTab(ctx, panel, pipeline, setCount);
  else if (tab === "executions") await executionsList(ctx, panel, { pipelineId: id });
  else if (tab === "definition") await definitionTab(ctx, panel, pipeline);

  return h("section", { class: "page" }, head, runHost, tablist(id, tab), panel);
}

// ---------------------------------------------------------------------------------------
// Run now: params and an optional event, both JSON, checked as you type and by the server.

function jsonObjectField({ id, label, hint, value = "", rows = 5 }) {
  const editor = jsonEditor({ id, rows, value });
  const fieldEl = field({ label, input: editor.textarea, control: editor.el, className: "field-wide",
    hint });
  const check = () => {
    const parsed = editor.parse();
    const bad = !parsed.ok ? `${label} is not valid JSON: ${parsed.message}`
      : (!parsed.empty && (parsed.value === null || typeof parsed.value !== "object"
        || Array.isArray(parsed.value))) ? `${label} must be a JSON object` : null;
    setFieldError(fieldEl, bad);
    editor.mark(bad ? [{ line: parsed.line || 1, message: bad }] : []);
    return bad ? null : parsed;
  };
  editor.textarea.addEventListener("input", check);
  return { fieldEl, editor, check };
}

function runForm(ctx, pipeline, types, close) {
  const declared = pipeline.definition.parameters || {};
  const params = jsonObjectField({ id: "run-params", label: "Params", rows: 4,
    value: Object.keys(declared).length ? pretty(declared) : "",
    hint: h("span", {}, "Optional JSON object, read as ", code("{{ params.<name> }}"),
      Object.keys(declared).length ? "; prefilled with the pipeline's defaults." : ".") });
  const typeSel = h("select", { id: "run-event-type" }, h("option", { value: "" }, "No event"),
    types.map((t) => h("option", { value: t.name }, t.name)));
  const event = jsonObjectField({ id: "run-event-data", label: "Event data", rows: 6,
    hint: h("span", {}, "The event's data, read as ", code("{{ event.<field> }}"),
      ". Validated like a published event, never stored.") });
  typeSel.addEventListener("change", () => {
    const t = types.find((x) => x.name === typeSel.value);
    event.editor.value = t ? pretty(t.example || {}) : "";
    event.fieldEl.hidden = !t;
    setFieldError(event.fieldEl, null);
  });
  event.fieldEl.hidden = true;
  const typeField = field({ label: "Event type", input: typeSel });
  const fallback = formError();
  const start = h("button", { type: "submit", class: "btn btn-primary" }, "Start run");
  const form = h("form", { class: "form", novalidate: true, "aria-label": "Run now" },
    h("h2", {}, `Run ${pipeline.name}`), params.fieldEl, typeField, event.fieldEl, fallback,
    h("div", { class: "form-actions" }, start, button("Close", { onclick: close })));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    setFormError(fallback, null);
    setFieldError(typeField, null);
    // Every problem at once, each at its field.
    const p = params.check();
    const ev = typeSel.value ? event.check() : { empty: true };
    if (!p || !ev) return;
    const body = { params: p.empty ? {} : p.value };
    if (typeSel.value) body.event = { event_type: typeSel.value, data: ev.empty ? {} : ev.value };
    start.disabled = true;
    try {
      const exe = await api.post(`/v1/pipelines/${encodeURIComponent(pipeline.id)}/run`, body);
      ctx.navigate(`#/executions/${encodeURIComponent(exe.id)}`);
    } catch (err) {
      const path = err.path || "";
      if (path.startsWith("params")) {
        setFieldError(params.fieldEl, err.message);
        const at = params.editor.lineOf(path, "params");
        if (at) params.editor.mark([{ line: at.line, message: err.message }]);
      } else if (path === "event.event_type" || path === "event_type") {
        setFieldError(typeField, err.message);
      } else if (path.startsWith("event") || path.startsWith("data")) {
        setFieldError(event.fieldEl, err.message);
        const at = event.editor.lineOf(path.replace(/^event\./, ""), "data");
        if (at) event.editor.mark([{ line: at.line, message: err.message }]);
      } else {
        setFormError(fallback, err.message);
      }
    } finally {
      start.disabled = false;
    }
  });
  return form;
}

function stepsTab(panel, pipeline) {
  const steps = Array.isArray(pipeline.definition.steps) ? pipeline.definition.steps : [];
  const cards = steps.map((st) => {
    const extras = [];
    for (const key of ["name", "condition", "timeout_seconds", "on_failure", "max_parallel",
      "on_item_failure"]) {
      if (st[key] !== undefined) extras.push(h("dt", {}, key), h("dd", {}, code(String(st[key]))));
    }
    if (st.for_each !== undefined) {
      extras.push(h("dt", {}, "for_each"), h("dd", {}, code(typeof st.for_each === "string"
        ? st.for_each : JSON.stringify(st.for_each))));
    }
    if (st.retry) extras.push(h("dt", {}, "retry"), h("dd", {}, code(JSON.stringify(st.retry))));
    return h("article", { class: "card step-card", "data-step-id": st.id },
      h("h3", {}, st.id, " ", h("span", { class: "pill" }, st.action)),
      h("dl", { class: "kv" },
        h("dt", {}, "depends on"),
        h("dd", {}, st.depends_on && st.depends_on.length ? st.depends_on.join(", ") : "—"),
        extras),
      h("h4", {}, "Params"),
      st.params && Object.keys(st.params).length
        ? jsonBlock(st.params, `Params of ${st.id}`) : h("p", { class: "muted" }, "none"));
  });
  const top = pipeline.definition;
  const opts = ["parameters", "timeout_seconds", "max_parallel_steps", "cancel_on"]
    .filter((k) => top[k] !== undefined);
  replace(panel,
    h("h2", { class: "sr-only" }, "Steps"),
    h("div", { class: "card" }, dagSvg(steps, { label: `Steps of ${pipeline.name}` })),
    opts.length ? h("dl", { class: "kv kv-inline" },
      opts.map((k) => [h("dt", {}, k), h("dd", {}, code(JSON.stringify(top[k])))])) : null,
    h("div", { class: "cards" }, cards));
}

async function definitionTab(ctx, panel, pipeline) {
  const { form, editor } = definitionForm({
    idPrefix: "definition", name: pipeline.name, description: pipeline.description,
    definition: pipeline.definition, submitLabel: "Save",
    onSubmit: async (body) => {
      const saved = await api.patch(`/v1/pipelines/${encodeURIComponent(pipeline.id)}`, body);
      toast(saved.version !== pipeline.version
        ? `Saved: version ${saved.version}` : "Saved (definition unchanged)");
      ctx.refresh();
    },
  });
  const versions = h("div", {});
  replace(panel, h("h2", { class: "sr-only" }, "Definition"), form,
    h("h3", {}, "Versions"), versions);
  try {
    const { items } = await api.get(`/v1/pipelines/${encodeURIComponent(pipeline.id)}/versions`,
      null, ctx.signal);
    const list = h("ul", { class: "versions" }, items.slice().reverse().map((v) => h("li", {},
      h("span", { class: "strong" }, `v${v.version}`), " ", timeEl(v.created_at),
      v.version === pipeline.version ? h("span", { class: "pill" }, "current") : button("Load into editor", {
        class: "btn btn-small",
        "aria-label": `Load version ${v.version} into the editor`,
        onclick: () => {
          editor.value = pretty(v.definition);
          editor.textarea.dispatchEvent(new Event("input"));
          editor.textarea.focus();
        },
      }))));
    replace(versions, items.length ? list : empty("No versions."));
  } catch (err) {
    clear(versions);
    versions.append(h("p", { class: "muted" }, `Versions unavailable: ${err.message}`));
  }
}
