// DOM helpers. Everything that shows data goes through text nodes: never innerHTML.

const SVG_NS = "http://www.w3.org/2000/svg";
const PROPS = new Set(["value", "checked", "disabled", "selected", "indeterminate"]);

function build(el, attrs, children, isSvg) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "dataset") {
      for (const [k, v] of Object.entries(value)) if (v != null) el.dataset[k] = String(v);
    } else if (!isSvg && PROPS.has(key)) {
      el[key] = value;
    } else if (key === "class" && !isSvg) {
      el.className = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** h("p", {class: "x"}, "text", child) — an HTML element. */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children, false);
}

/** s("rect", {x: 1}) — an SVG element. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children, true);
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

let uid = 0;
export function newId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

// ---------------------------------------------------------------------------------------
// Formatting

// The server's clock minus this browser's (set from the live streams), so "running for"
// durations agree with the server's timestamps even when the clocks differ.
let clockOffset = 0;
export function setServerNow(iso) {
  const t = new Date(iso).getTime();
  if (!Number.isNaN(t)) clockOffset = t - Date.now();
}
export function serverNow() {
  return Date.now() + clockOffset;
}

/** This browser's time zone as a UTC offset: "UTC", "UTC+1", "UTC-5:30". */
export function zoneLabel(date = new Date()) {
  const minutes = -date.getTimezoneOffset();
  if (minutes === 0) return "UTC";
  const sign = minutes > 0 ? "+" : "-";
  const abs = Math.abs(minutes);
  const mm = abs % 60;
  return `UTC${sign}${Math.floor(abs / 60)}${mm ? `:${String(mm).padStart(2, "0")}` : ""}`;
}

export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${zoneLabel(d)}`;
}

export function relTime(iso) {
  if (!iso) return "never";
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return String(iso);
  const sec = Math.round((serverNow() - t) / 1000);
  if (sec <= -5) {  // in the future: a schedule's next run
    const ahead = -sec;
    if (ahead < 60) return `in ${ahead}s`;
    if (ahead < 3600) return `in ${Math.floor(ahead / 60)}m`;
    if (ahead < 86400) return `in ${Math.floor(ahead / 3600)}h`;
    return `in ${Math.floor(ahead / 86400)}d`;
  }
  if (sec < 5) return "just now";
  if (sec < 60) return `${sec}s ago`;
  if (sec < 3600) return `${Math.floor(sec / 60)}m ago`;
  if (sec < 86400) return `${Math.floor(sec / 3600)}h ago`;
  return `${Math.floor(sec / 86400)}d ago`;
}

/** A <time> showing the relative age (kept current), with the exact time and zone as its title. */
export function timeEl(iso) {
  if (!iso) return h("span", { class: "muted" }, "never");
  return h("time", { datetime: iso, title: fmtTime(iso), "data-rel": "" }, relTime(iso));
}

export function durationMs(start, end) {
  if (!start) return null;
  const a = new Date(start).getTime();
  const b = end ? new Date(end).getTime() : serverNow();
  return Math.max(0, b - a);
}

export function fmtMs(ms) {
  if (ms == null) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  const m = Math.floor(ms / 60000);
  return `${m}m ${Math.round((ms % 60000) / 1000)}s`;
}

export function duration(start, end) {
  return fmtMs(durationMs(start, end));
}

/** A duration that ticks every second while `end` is empty (see tickDurations). */
export function durationEl(start, end) {
  const el = h("span", { class: "duration" }, duration(start, end));
  if (start && !end) {
    el.dataset.tickStart = start;
    el.classList.add("is-running");
  }
  return el;
}

/** Bring every ticking duration and relative time on the page up to date (no request made). */
export function tickDurations(root = document) {
  for (const el of root.querySelectorAll("[data-tick-start]")) {
    el.textContent = duration(el.dataset.tickStart, null);
  }
  for (const el of root.querySelectorAll("time[data-rel]")) {
    el.textContent = relTime(el.getAttribute("datetime"));
  }
}

export function pretty(value) {
  return JSON.stringify(value, null, 2);
}

export function compact(value) {
  return JSON.stringify(value);
}

export function badge(status, text) {
  return h("span", { class: `badge badge-${status || "unknown"}` }, text || status || "—");
}

export function jsonBlock(value, label) {
  return h("pre", { class: "json", tabindex: "0", "aria-label": label || null }, pretty(value));
}

export function empty(text) {
  return h("p", { class: "empty" }, text);
}

export function link(href, ...children) {
  return h("a", { href }, ...children);
}

export function code(text) {
  return h("code", {}, text);
}

// ---------------------------------------------------------------------------------------
// Forms: a field is a label bound to its input, a hint and an error slot.

export function field({ label, input, control, hint, className, after }) {
  if (!input.id) input.id = newId("f");
  const errorId = `${input.id}-error`;
  const hintId = hint ? `${input.id}-hint` : null;
  const described = [hintId, errorId].filter(Boolean).join(" ");
  input.setAttribute("aria-describedby", described);
  const error = h("p", { class: "field-error", id: errorId, hidden: true });
  const wrap = h("div", { class: `field ${className || ""}` },
    h("label", { for: input.id }, label),
    control || input,
    after || null,
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    error);
  wrap.input = input;
  wrap.error = error;
  return wrap;
}

/** A checkbox drawn as a switch, with its label after it. */
export function switchField({ label, checked, id, hint }) {
  const input = h("input", { type: "checkbox", role: "switch", class: "switch", id: id || newId("sw"),
    checked: Boolean(checked) });
  const hintId = hint ? `${input.id}-hint` : null;
  if (hintId) input.setAttribute("aria-describedby", hintId);
  const error = h("p", { class: "field-error", id: `${input.id}-error`, hidden: true });
  const wrap = h("div", { class: "field field-switch" },
    h("div", { class: "switch-row" }, input, h("label", { for: input.id }, label)),
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    error);
  wrap.input = input;
  wrap.error = error;
  return wrap;
}

export function setFieldError(fieldEl, message) {
  if (!fieldEl) return;
  const { error, input } = fieldEl;
  if (message) {
    replace(error, message);
    error.hidden = false;
    input.setAttribute("aria-invalid", "true");
    fieldEl.classList.add("has-error");
  } else {
    clear(error);
    error.hidden = true;
    input.removeAttribute("aria-invalid");
    fieldEl.classList.remove("has-error");
  }
}

export function formError() {
  return h("div", { class: "form-error", role: "alert", hidden: true });
}

export function setFormError(el, message) {
  if (message) {
    replace(el, message);
    el.hidden = false;
  } else {
    clear(el);
    el.hidden = true;
  }
}

/**
 * Show an API error at the field its `details.path` names. `fields` maps a path prefix
 * ("filter", "event_type", "name") to a field; the longest matching prefix wins, and an
 * error at no known field goes to `fallback`.
 */
export function showApiError(err, fields, fallback) {
  const path = err && err.path ? err.path : "";
  let best = null;
  for (const key of Object.keys(fields)) {
    const hit = path === key || path.startsWith(`${key}.`) || path.startsWith(`${key}[`) ||
      path.startsWith(`${key} `);
    if (hit && (!best || key.length > best.length)) best = key;
  }
  const message = err && err.message ? err.message : String(err);
  if (best) {
    setFieldError(fields[best], message);
    fields[best].input.focus();
    if (fallback) setFormError(fallback, null);
  } else if (fallback) {
    setFormError(fallback, message);
  }
  return best;
}

/**
 * Ask before acting: a modal <dialog> with the question, optional extra content (a select,
 * a switch) and two buttons. Resolves true when confirmed. Escape or "Back" resolves false.
 */
export function confirmDialog({ title, body, content, confirmLabel, danger = false }) {
  return new Promise((resolve) => {
    const titleId = newId("dlg");
    const ok = h("button", { type: "submit", class: `btn ${danger ? "btn-danger" : "btn-primary"}`,
      value: "ok" }, confirmLabel);
    const back = h("button", { type: "button", class: "btn", value: "back" }, "Back");
    const dialog = h("dialog", { class: "dialog", "aria-labelledby": titleId },
      h("form", { method: "dialog", class: "form" },
        h("h2", { id: titleId }, title),
        body ? h("p", {}, body) : null,
        content || null,
        h("div", { class: "form-actions" }, ok, back)));
    let answer = false;
    ok.addEventListener("click", () => { answer = true; });
    back.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    ok.focus();
  });
}

export function button(text, attrs = {}) {
  return h("button", { type: "button", class: "btn", ...attrs }, text);
}

// ---------------------------------------------------------------------------------------
// Feedback

let toastTimer = null;
export function toast(message, kind = "ok") {
  const el = document.getElementById("toast");
  if (!el) return;
  replace(el, h("div", { class: `toast-msg toast-${kind}` }, message));
  el.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove("show"), 3500);
}

export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

export function errorBox(err) {
  return h("div", { class: "form-error", role: "alert" }, err && err.message ? err.message : String(err));
}
