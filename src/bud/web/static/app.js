// The shell: hash routing, navigation, timers tied to the current page, API-key prompt,
// ticking durations and table cells labelled for the phone card layout.

import { setUnauthenticatedHandler } from "./api.js";
import { errorBox, h, replace, tickDurations } from "./dom.js";
import { eventPage, eventsPage } from "./events.js";
import { executionPage, executionsPage } from "./executions.js";
import { pipelinePage, pipelinesPage } from "./pipelines.js";
import { platformPage } from "./platform.js";
import { showSignIn } from "./signin.js";

const routes = [
  [/^\/pipelines\/?$/, "pipelines", (ctx) => pipelinesPage(ctx)],
  [/^\/pipelines\/([^/]+)(?:\/([a-z]+))?\/?$/, "pipelines",
    (ctx, id, tab) => pipelinePage(ctx, decodeURIComponent(id), tab || "steps")],
  [/^\/executions\/?$/, "executions", (ctx) => executionsPage(ctx)],
  [/^\/executions\/([^/]+)\/?$/, "executions", (ctx, id) => executionPage(ctx, decodeURIComponent(id))],
  [/^\/events\/?$/, "events", (ctx) => eventsPage(ctx)],
  [/^\/events\/([^/]+)\/?$/, "events", (ctx, id) => eventPage(ctx, decodeURIComponent(id))],
  [/^\/platform\/?$/, "platform", (ctx) => platformPage(ctx)],
];

let current = null; // {controller, path}
let firstRender = true;

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/pipelines";
  const [path, queryString] = raw.split("?");
  return { path: path || "/pipelines", query: new URLSearchParams(queryString || "") };
}

export function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

/** Replace the query part of the current hash without adding a history entry. */
export function setQuery(params) {
  const { path } = parseHash();
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const qs = q.toString();
  history.replaceState(null, "", `#${path}${qs ? `?${qs}` : ""}`);
}

function makeContext(controller, query) {
  const { signal } = controller;
  return {
    signal,
    query,
    navigate,
    setQuery,
    refresh: () => render({ keepScroll: true }),
    setTitle(title) {
      document.title = title ? `${title} · Bud Pipelines` : "Bud Pipelines";
    },
    get alive() {
      return !signal.aborted;
    },
    /** Call fn every `ms` until it answers false or the page is left. */
    every(ms, fn) {
      let timer = null;
      const tick = async () => {
        if (signal.aborted) return;
        let again = true;
        try {
          again = (await fn()) !== false;
        } catch (err) {
          again = !(err && err.name === "AbortError");
        }
        if (again && !signal.aborted) timer = setTimeout(tick, ms);
      };
      timer = setTimeout(tick, ms);
      signal.addEventListener("abort", () => clearTimeout(timer));
    },
  };
}

async function render({ keepScroll = false } = {}) {
  const main = document.getElementById("main");
  const { path, query } = parseHash();
  const previous = current;
  if (previous) previous.controller.abort();
  const controller = new AbortController();
  current = { controller, path };
  const ctx = makeContext(controller, query);

  let section = "";
  let page = null;
  for (const [re, name, fn] of routes) {
    const m = re.exec(path);
    if (m) {
      section = name;
      page = () => fn(ctx, ...m.slice(1));
      break;
    }
  }
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  closeNav();

  // Keep the old page on screen for a moment: most pages load in a few milliseconds.
  const slow = setTimeout(() => {
    if (!controller.signal.aborted) replace(main, h("p", { class: "loading" }, "Loading…"));
  }, 250);
  let content;
  try {
    content = page ? await page() : notFound(path);
  } catch (err) {
    if (controller.signal.aborted) return;
    content = h("section", { class: "page" }, h("h1", {}, "Something went wrong"), errorBox(err),
      h("p", {}, h("a", { href: "#/pipelines" }, "Back to pipelines")));
  } finally {
    clearTimeout(slow);
  }
  if (controller.signal.aborted) return;
  const scrollY = window.scrollY;
  replace(main, content);
  const samePage = previous && previous.path.split("/").slice(0, 3).join("/") ===
    path.split("/").slice(0, 3).join("/");
  if (keepScroll || samePage) window.scrollTo(0, scrollY);
  else window.scrollTo(0, 0);
  if (firstRender) {
    firstRender = false;
  } else if (samePage && main.querySelector('[role="tab"][aria-selected="true"]')) {
    main.querySelector('[role="tab"][aria-selected="true"]').focus();
  } else if (!keepScroll) {
    const heading = main.querySelector("h1");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
  }
}

function notFound(path) {
  return h("section", { class: "page" }, h("h1", {}, "Not found"),
    h("p", {}, `Nothing lives at ${path}. `, h("a", { href: "#/pipelines" }, "Go to pipelines")));
}

// ---------------------------------------------------------------------------------------
// Navigation on small screens

function closeNav() {
  const toggle = document.getElementById("nav-toggle");
  if (!toggle) return;
  toggle.setAttribute("aria-expanded", "false");
  document.body.classList.remove("nav-open");
}

function setupNav() {
  const toggle = document.getElementById("nav-toggle");
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    document.body.classList.toggle("nav-open", open);
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && document.body.classList.contains("nav-open")) {
      closeNav();
      toggle.focus();
    }
  });
}

// ---------------------------------------------------------------------------------------
// Tables become cards on phones: each cell carries its column's name (data-label), which
// the stylesheet shows before the value below 760 px.

function labelCells(root) {
  const tables = root.matches && root.matches("table.table") ? [root]
    : [...(root.querySelectorAll ? root.querySelectorAll("table.table") : [])];
  for (const table of tables) {
    const heads = [...table.querySelectorAll(":scope > thead th")].map((th) => th.textContent.trim());
    for (const tr of table.querySelectorAll(":scope > tbody > tr:not(.detail-row)")) {
      [...tr.children].forEach((td, i) => {
        if (!td.hasAttribute("data-label") && heads[i] !== undefined) td.dataset.label = heads[i];
      });
    }
  }
}

function watchTables() {
  const main = document.getElementById("main");
  new MutationObserver((records) => {
    for (const r of records) {
      for (const node of r.addedNodes) {
        if (node.nodeType !== 1) continue;
        if (node.closest && node.closest("table.table") && node !== node.closest("table.table")) {
          labelCells(node.closest("table.table"));
        } else {
          labelCells(node);
        }
      }
    }
  }).observe(main, { childList: true, subtree: true });
}

setUnauthenticatedHandler((err) => showSignIn(err, render));
setupNav();
watchTables();
// Durations of running things and "5s ago" times tick in place; nothing is fetched for it.
setInterval(() => tickDurations(), 1000);
window.addEventListener("hashchange", () => render());
render();
