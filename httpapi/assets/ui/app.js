// app.js: the dashboard's shell: the token, the views (chosen by the
// location's hash: #view=store&store=s1, #view=transfers&store=s1,
// #view=flash, #view=ops, …) and
// the one live feed they share.
import { token, setToken } from "./api.js";
import { Feed } from "./feed.js";
import * as storeView from "./store.js";
import * as flashView from "./flash.js";
import * as opsView from "./ops.js";
import * as transfersView from "./transfers.js";

const views = { store: storeView, transfers: transfersView, flash: flashView, ops: opsView };
const $ = (id) => document.getElementById(id);

let current = null; // the mounted view: { name, onEvents, onGap, unmount }

const feed = new Feed({
  onEvents: (evs) => current && current.onEvents && current.onEvents(evs),
  onGap: (msg) => current && current.onGap && current.onGap(msg),
  onStatus: (state, f, detail) => {
    const s = $("status");
    s.dataset.state = state;
    s.dataset.connects = f.connects;
    s.dataset.gaps = f.gaps;
    s.textContent = state === "live" ? "live" : state === "refused" ? "feed refused (" + detail + ")" :
      state === "reconnecting" ? "reconnecting (" + (detail || "") + ")" : state;
  },
});

// hashParams reads the location's hash as query parameters.
export function hashParams() { return new URLSearchParams(location.hash.slice(1)); }

// setHash replaces parameters of the hash without adding history entries
// for every click.
export function setHash(params) {
  const h = hashParams();
  for (const [k, v] of Object.entries(params)) { if (v == null || v === "") h.delete(k); else h.set(k, v); }
  history.replaceState(null, "", "#" + h.toString());
}

const ctx = {
  // follow makes the feed follow one store's events ("" for all).
  follow(store) { if (feed.store !== (store || "") || !feed.ctrl) feed.start(store); },
  feed,
  setHash,
  hashParams,
};

function route() {
  const h = hashParams();
  const t = h.get("token");
  if (t) { // a link may carry the token; it is moved to sessionStorage at once
    setToken(t);
    h.delete("token");
    history.replaceState(null, "", "#" + h.toString());
  }
  const name = views[h.get("view")] ? h.get("view") : "store";
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("sel", a.dataset.view === name);
  if (!token()) {
    $("status").textContent = "enter a token";
    $("view").replaceChildren();
    return;
  }
  if (current && current.name === name) { current.route && current.route(h); return; }
  if (current && current.unmount) current.unmount();
  const root = $("view");
  root.replaceChildren();
  root.dataset.view = name;
  current = { name, ...views[name].mount(root, ctx, h) };
}

$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  const t = $("token").value.trim();
  if (!t) return;
  setToken(t);
  $("token").value = "";
  feed.stop();
  if (current && current.unmount) current.unmount();
  current = null;
  route();
});
for (const a of document.querySelectorAll("#nav a")) {
  a.addEventListener("click", (e) => {
    e.preventDefault();
    const h = hashParams();
    h.set("view", a.dataset.view);
    location.hash = h.toString();
  });
}
window.addEventListener("hashchange", route);
route();
