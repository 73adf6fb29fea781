// Live updates: the server pushes changes over GET /v1/stream (server-sent events).
//
// The stream is read with fetch rather than EventSource because EventSource cannot send the
// API key header. A dropped stream reconnects by itself (0.5 s, doubling up to 5 s); the
// stream ends when the page that opened it is left (its AbortSignal).

import { getApiKey } from "./api.js";
import { h, replace, setServerNow } from "./dom.js";

function parseFrame(frame) {
  let event = "message";
  const data = [];
  for (const line of frame.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const at = line.indexOf(":");
    const key = at < 0 ? line : line.slice(0, at);
    const value = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
    if (key === "event") event = value;
    else if (key === "data") data.push(value);
  }
  return data.length ? { event, data: data.join("\n") } : null;
}

/**
 * Follow `/v1/stream` with `params` until `signal` aborts. `handlers` maps an event name
 * ("execution", "executions", "events", "error") to a function of its JSON data;
 * `onState("live" | "reconnecting" | "closed")` reports the connection.
 */
export function follow(params, handlers, { signal, onState = () => {} } = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const url = `/v1/stream?${q}`;
  let delay = 500;

  const once = async () => {
    const headers = { Accept: "text/event-stream" };
    const key = getApiKey();
    if (key) headers.Authorization = `Bearer ${key}`;
    const response = await fetch(url, { headers, signal, cache: "no-store" });
    if (!response.ok) {
      let message = `the live stream answered HTTP ${response.status}`;
      try {
        message = (await response.json()).error.message || message;
      } catch {
        /* not JSON */
      }
      if (handlers.error) handlers.error({ message, status: response.status });
      return response.status >= 500; // a 4xx will not get better by retrying
    }
    onState("live");
    delay = 500;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return true;
      buffer += value.replaceAll("\r\n", "\n");
      let end = buffer.indexOf("\n\n");
      while (end >= 0) {
        const frame = parseFrame(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (frame && handlers[frame.event]) {
          const data = JSON.parse(frame.data);
          if (data && data.now) setServerNow(data.now);
          handlers[frame.event](data);
          if (frame.event === "error") return false;
        }
        end = buffer.indexOf("\n\n");
      }
    }
  };

  (async () => {
    while (!signal.aborted) {
      let again = true;
      try {
        again = await once();
      } catch (err) {
        if (signal.aborted || (err && err.name === "AbortError")) break;
      }
      if (!again || signal.aborted) break;
      onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 5000);
    }
    onState("closed");
  })();
}

/** A small "Live" / "Reconnecting…" marker for a page head, driven by follow's onState. */
export function liveBadge() {
  const el = h("span", { class: "live-badge", "data-state": "connecting", role: "status" },
    "Connecting…");
  const labels = { live: "● Live", reconnecting: "Reconnecting…", closed: "Not live" };
  el.setState = (state) => {
    el.dataset.state = state;
    replace(el, labels[state] || state);
  };
  return el;
}
