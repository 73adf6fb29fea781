// The REST API client: fetch + JSON, errors as ApiError carrying the server's path.

const KEY_STORAGE = "bud.apiKey";
let memoryKey = "";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details || {};
  }

  get path() {
    return typeof this.details.path === "string" ? this.details.path : "";
  }
}

let onUnauthenticated = () => {};

export function setUnauthenticatedHandler(fn) {
  onUnauthenticated = fn;
}

// The key lives in sessionStorage: it is gone when the tab closes and never written to disk
// for good. A key an earlier version kept in localStorage is removed on first use.
export function getApiKey() {
  try {
    if (localStorage.getItem(KEY_STORAGE) !== null) localStorage.removeItem(KEY_STORAGE);
    return sessionStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return memoryKey;
  }
}

export function setApiKey(key) {
  memoryKey = key || "";
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    /* storage unavailable: the key lasts for this page only */
  }
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

export async function request(method, path, { body, params, signal } = {}) {
  const headers = { Accept: "application/json" };
  const key = getApiKey();
  if (key) headers["X-API-Key"] = key;
  const init = { method, headers, signal };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`${path}${query(params)}`, init);
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", `cannot reach the server: ${err.message || err}`, {});
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const e = (data && data.error) || {};
    const err = new ApiError(response.status, e.code || "http_error",
      e.message || `${method} ${path} answered HTTP ${response.status}`, e.details);
    if (response.status === 401) onUnauthenticated(err);
    throw err;
  }
  return data;
}

export const api = {
  get: (path, params, signal) => request("GET", path, { params, signal }),
  post: (path, body) => request("POST", path, { body: body === undefined ? {} : body }),
  patch: (path, body) => request("PATCH", path, { body }),
  put: (path, body) => request("PUT", path, { body }),
  del: (path) => request("DELETE", path),
};

/** Every item of a paged list, following next_cursor up to `max` items. */
export async function listAll(path, params = {}, max = 1000, signal) {
  const items = [];
  let cursor = null;
  do {
    const page = await api.get(path, { ...params, limit: 200, cursor }, signal);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

// Event types rarely change: fetch them once per page load (a failed fetch is retried).
let eventTypesPromise = null;

export function eventTypes() {
  if (!eventTypesPromise) {
    eventTypesPromise = api.get("/v1/event-types").then((page) => page.items, (err) => {
      eventTypesPromise = null;
      throw err;
    });
  }
  return eventTypesPromise;
}
