// The pipeline DAG as SVG: layers by dependency depth, left to right, arrows for depends_on.

import { h, newId, s } from "./dom.js";

const W = 196;
const H = 56;
const GAP_X = 64;
const GAP_Y = 20;
const PAD = 12;
const ICONS = { pending: "○", queued: "○", running: "●", waiting: "◷", succeeded: "✓", failed: "✗",
  skipped: "↷", cancelled: "⊘" };

function truncate(text, max) {
  const t = String(text ?? "");
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

/** Normalize definition steps ({id, depends_on}) or execution steps ({step_id, depends_on}). */
export function nodesOf(steps) {
  return (Array.isArray(steps) ? steps : [])
    .filter((st) => st && typeof st === "object")
    .map((st, i) => ({
      id: String(st.step_id ?? st.id ?? `#${i}`),
      action: String(st.action ?? ""),
      deps: Array.isArray(st.depends_on) ? st.depends_on.map(String) : [],
      status: st.status,
    }));
}

/** Depth of each node (longest chain of dependencies), ordered within each layer. */
export function layout(nodes) {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const depth = new Map();
  const visiting = new Set();
  const depthOf = (id) => {
    if (depth.has(id)) return depth.get(id);
    if (visiting.has(id)) return 0; // a cycle: the server reports it; draw it flat
    visiting.add(id);
    const node = byId.get(id);
    let d = 0;
    for (const dep of node.deps) if (byId.has(dep)) d = Math.max(d, depthOf(dep) + 1);
    visiting.delete(id);
    depth.set(id, d);
    return d;
  };
  nodes.forEach((n) => depthOf(n.id));
  const layers = [];
  for (const n of nodes) {
    const d = depth.get(n.id);
    (layers[d] ||= []).push(n);
  }
  // Order each layer by the mean row of its parents, so edges cross less.
  const row = new Map();
  layers.forEach((layer, li) => {
    if (li > 0) {
      const key = (n) => {
        const rows = n.deps.filter((d) => row.has(d)).map((d) => row.get(d));
        return rows.length ? rows.reduce((a, b) => a + b, 0) / rows.length : Infinity;
      };
      layer.sort((a, b) => key(a) - key(b));
    }
    layer.forEach((n, i) => row.set(n.id, i));
  });
  const tallest = Math.max(1, ...layers.map((l) => (l ? l.length : 0)));
  const pos = new Map();
  layers.forEach((layer, li) => {
    const offset = ((tallest - layer.length) * (H + GAP_Y)) / 2;
    layer.forEach((n, i) => {
      pos.set(n.id, { x: PAD + li * (W + GAP_X), y: PAD + offset + i * (H + GAP_Y) });
    });
  });
  return {
    pos,
    width: PAD * 2 + Math.max(1, layers.length) * W + Math.max(0, layers.length - 1) * GAP_X,
    height: PAD * 2 + tallest * H + (tallest - 1) * GAP_Y,
  };
}

/**
 * The DAG. `statuses` (optional) maps step id to a status, which colours the node and is
 * also its `data-status`; `onSelect(id)` makes nodes focusable buttons.
 */
export function dagSvg(steps, { onSelect, selected, label } = {}) {
  const nodes = nodesOf(steps);
  if (!nodes.length) return h("p", { class: "empty" }, "No steps to draw.");
  const { pos, width, height } = layout(nodes);
  const marker = newId("arrow");
  const svg = s("svg", {
    class: "dag", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": label || `Pipeline graph with ${nodes.length} steps`,
  });
  svg.append(s("defs", {},
    s("marker", { id: marker, viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7",
      markerHeight: "7", orient: "auto-start-reverse" },
    s("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "dag-arrowhead" }))));
  const edges = s("g", { class: "dag-edges" });
  for (const n of nodes) {
    const to = pos.get(n.id);
    for (const dep of n.deps) {
      const from = pos.get(dep);
      if (!from) continue;
      const x1 = from.x + W;
      const y1 = from.y + H / 2;
      const x2 = to.x - 2;
      const y2 = to.y + H / 2;
      const mx = (x1 + x2) / 2;
      edges.append(s("path", {
        class: "dag-edge", d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`,
        "marker-end": `url(#${marker})`, "data-from": dep, "data-to": n.id,
      }));
    }
  }
  svg.append(edges);
  for (const n of nodes) {
    const { x, y } = pos.get(n.id);
    const status = n.status || "none";
    const name = n.status ? `Step ${n.id}: ${n.action}, ${n.status}` : `Step ${n.id}: ${n.action}`;
    const g = s("g", {
      class: `dag-node${selected === n.id ? " selected" : ""}`, transform: `translate(${x} ${y})`,
      "data-step-id": n.id, "data-status": status,
    });
    if (onSelect) {
      g.setAttribute("tabindex", "0");
      g.setAttribute("role", "button");
      g.setAttribute("aria-label", name);
      g.addEventListener("click", () => onSelect(n.id));
      g.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          onSelect(n.id);
        }
      });
    }
    g.append(
      s("title", {}, name),
      s("rect", { class: "dag-box", width: W, height: H, rx: "8", ry: "8" }),
      s("rect", { class: "dag-stripe", width: "6", height: H, rx: "3", ry: "3" }),
      s("text", { class: "dag-id", x: "16", y: "23" }, truncate(n.id, n.status ? 20 : 22)),
      s("text", { class: "dag-action", x: "16", y: "42" }, truncate(n.action, 26)),
      n.status ? s("text", { class: "dag-icon", x: String(W - 12), y: "23", "text-anchor": "end",
        "aria-hidden": "true" }, ICONS[n.status] || "•") : null,
    );
    svg.append(g);
  }
  return h("div", { class: "dag-scroll" }, svg);
}

export const STATUS_LEGEND = ["pending", "running", "waiting", "succeeded", "failed", "skipped",
  "cancelled"];

export function legend() {
  return h("ul", { class: "legend", "aria-label": "Step colours" },
    STATUS_LEGEND.map((st) => h("li", {}, h("span", { class: `swatch swatch-${st}` }), st)));
}
