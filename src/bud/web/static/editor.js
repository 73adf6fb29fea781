// A JSON text editor: a textarea with a line-number gutter that marks the lines with errors.

import { clear, h, newId } from "./dom.js";
import { locate, parseJson } from "./jsonpos.js";

export function jsonEditor({ id, value = "", rows = 8, placeholder = "", onInput }) {
  const textarea = h("textarea", {
    id: id || newId("json"), class: "code-input", rows: String(rows), spellcheck: "false",
    autocapitalize: "off", autocomplete: "off", wrap: "off", placeholder: placeholder || null,
    value,
  });
  const gutter = h("div", { class: "gutter", "aria-hidden": "true" });
  const wrap = h("div", { class: "code-editor" }, gutter, textarea);
  let marked = new Map();

  function renderGutter() {
    const lines = textarea.value.split("\n").length;
    clear(gutter);
    const count = Math.max(lines, Number(rows));
    for (let i = 1; i <= count; i += 1) {
      const mark = marked.get(i);
      gutter.append(h("div", { class: mark ? "gl gl-error" : "gl", title: mark || null },
        i <= lines ? String(i) : ""));
    }
    gutter.scrollTop = textarea.scrollTop;
  }

  textarea.addEventListener("scroll", () => { gutter.scrollTop = textarea.scrollTop; });
  textarea.addEventListener("input", () => {
    renderGutter();
    if (onInput) onInput(textarea.value);
  });
  // Tab indents inside the editor; Escape then Tab leaves it (the usual code-editor deal).
  let escaped = false;
  textarea.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { escaped = true; return; }
    if (e.key === "Tab" && !e.shiftKey && !escaped && !e.ctrlKey && !e.metaKey && !e.altKey) {
      e.preventDefault();
      const { selectionStart: a, selectionEnd: b } = textarea;
      textarea.setRangeText("  ", a, b, "end");
      textarea.dispatchEvent(new Event("input"));
    }
    escaped = false;
  });
  renderGutter();

  return {
    el: wrap,
    textarea,
    get value() { return textarea.value; },
    set value(v) { textarea.value = v; renderGutter(); },
    parse() { return parseJson(textarea.value); },
    /** Mark lines: [{line, message}] (an empty list clears the marks). */
    mark(items) {
      marked = new Map(items.filter((m) => m && m.line).map((m) => [m.line, m.message]));
      renderGutter();
    },
    /** Line of a server error path (with a prefix such as "filter" stripped), or null. */
    lineOf(path, prefix = "") {
      const parsed = parseJson(textarea.value);
      if (!parsed.ok) return null;
      let p = String(path || "");
      if (prefix && (p === prefix || p.startsWith(`${prefix}.`))) p = p.slice(prefix.length + 1);
      const at = p ? locate(textarea.value, parsed.positions, p) : null;
      return at;
    },
    select(at) {
      if (!at) return;
      textarea.focus();
      textarea.setSelectionRange(at.start, at.end);
      const lineHeight = parseFloat(getComputedStyle(textarea).lineHeight) || 18;
      textarea.scrollTop = Math.max(0, (at.line - 3) * lineHeight);
    },
  };
}
