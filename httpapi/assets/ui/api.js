// api.js: the token (kept in sessionStorage: it lives as long as the tab,
// never in localStorage) and JSON requests to the API.

const TOKEN_KEY = "inventory-token";

export function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
}

// ApiError carries the problem+json answer of a refused request.
export class ApiError extends Error {
  constructor(status, problem) {
    super(status + " " + (problem.detail || problem.title || "request failed"));
    this.status = status;
    this.problem = problem;
  }
}

// api sends one request and returns its JSON body; a non-2xx answer throws
// an ApiError.
export async function api(path, { method = "GET", body, signal, headers = {} } = {}) {
  const h = { Authorization: "Bearer " + token(), ...headers };
  if (body !== undefined) h["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), signal, cache: "no-store" });
  if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => ({})));
  return res.status === 204 ? null : res.json();
}

export const enc = encodeURIComponent;

// el builds an element: el("td", {class: "x", dataset: {col: "sku"}}, "text", child…).
export function el(tag, attrs = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "dataset") Object.assign(n.dataset, v);
    else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
    else if (k === "class") n.className = v;
    else if (k in n && typeof v !== "string") n[k] = v;
    else n.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c != null) n.append(c instanceof Node ? c : String(c));
  return n;
}

export function fmtTime(t) {
  if (!t) return "";
  const d = new Date(t);
  return isNaN(d) ? String(t) : d.toLocaleString(undefined, { hour12: false });
}
