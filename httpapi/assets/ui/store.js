// store.js: the store view. A table of the store's items (search, sort, a
// low-stock filter read from the ledger), every stock state the server
// reports, live updates applied in place (only the changed rows' cells
// are written), and a drawer with an item's ledger history and its
// availability in the other stores.
import { api, enc, el, fmtTime, ApiError } from "./api.js";

// COLUMNS: the item's numbers. A state column shows once the server
// reports that state (the item JSON has the member).
const COLUMNS = [
  { key: "sku", label: "SKU", always: true },
  { key: "on_hand", label: "on hand", always: true },
  { key: "reserved", label: "reserved", always: true },
  { key: "committed", label: "committed" },
  { key: "damaged", label: "damaged" },
  { key: "quality_control", label: "quality control" },
  { key: "display", label: "display" },
  { key: "incoming", label: "incoming" },
  { key: "safety_stock", label: "safety stock" },
  { key: "available", label: "available", always: true },
  { key: "reorder_point", label: "reorder point", always: true },
  { key: "max_per_customer", label: "limit", always: true },
  { key: "version", label: "version", always: true },
];
const STATES = ["reserved", "committed", "damaged", "quality_control", "display"];

// availableOf computes available as the server does (docs/design.md,
// stock states): on_hand less every state that cannot be sold and the
// safety stock, never below 0.
export function availableOf(it) {
  let a = it.on_hand;
  for (const s of STATES) a -= it[s] || 0;
  a -= it.safety_stock || 0;
  return Math.max(a, 0);
}

function isLow(it) { return it.reorder_point != null && it.available <= it.reorder_point; }

export function mount(root, ctx, params) {
  const st = {
    store: "", rows: new Map(), sort: { key: "sku", desc: false }, query: "", lowOnly: false,
    low: new Set(), cols: COLUMNS.filter((c) => c.always), drawer: null, loadGen: 0, reloads: 0,
  };
  const storesUl = el("ul", { class: "plain", id: "stores" });
  const search = el("input", { type: "search", id: "search", placeholder: "search SKU", "aria-label": "search SKU" });
  const lowBox = el("input", { type: "checkbox", id: "low-only" });
  const count = el("span", { class: "count", id: "count" });
  const thead = el("thead");
  const tbody = el("tbody", { id: "items" });
  const title = el("h2", { id: "title" }, "Items");
  const note = el("div", { class: "muted", id: "note" });
  const drawer = el("aside", { class: "drawer", id: "drawer", hidden: true });
  root.append(el("div", { class: "grid" },
    el("section", {}, el("h2", {}, "Stores"), storesUl),
    el("section", {}, title,
      el("div", { class: "toolbar" }, search, el("label", {}, lowBox, " at or below reorder point"), count),
      note, el("table", { id: "items-table" }, thead, tbody))), drawer);

  search.addEventListener("input", () => { st.query = search.value.trim().toLowerCase(); applyFilter(); });
  lowBox.addEventListener("change", async () => {
    st.lowOnly = lowBox.checked;
    ctx.setHash({ low: st.lowOnly ? "1" : null });
    if (st.lowOnly) await loadLow();
    applyFilter();
  });

  function header() {
    thead.replaceChildren(el("tr", {}, st.cols.map((c) => el("th", {
      dataset: { col: c.key },
      class: st.sort.key === c.key ? "sorted" + (st.sort.desc ? " desc" : "") : "",
      onclick: () => {
        st.sort = { key: c.key, desc: st.sort.key === c.key ? !st.sort.desc : false };
        header(); resort();
      },
    }, c.label))));
  }

  // widen adds the columns of the states the server reports.
  function widen(it) {
    const want = COLUMNS.filter((c) => c.always || c.key in it);
    if (want.length > st.cols.length) {
      st.cols = want;
      header();
      for (const r of st.rows.values()) { r.tr.replaceChildren(); r.cells = {}; paint(r, false); }
    }
  }

  function paint(r, flash) {
    const it = r.item;
    for (const c of st.cols) {
      let td = r.cells[c.key];
      if (!td) { td = el("td", { dataset: { col: c.key } }); r.cells[c.key] = td; r.tr.append(td); }
      const v = it[c.key] == null ? "" : String(it[c.key]);
      if (td.textContent !== v) td.textContent = v;
    }
    r.tr.classList.toggle("low", isLow(it));
    if (flash) { r.tr.classList.remove("flash"); void r.tr.offsetWidth; r.tr.classList.add("flash"); }
  }

  function upsert(it, flash) {
    let r = st.rows.get(it.sku);
    if (r && r.item.version >= it.version) return false; // older or the same: already shown
    if (!r) {
      const tr = el("tr", { dataset: { sku: it.sku }, onclick: () => openDrawer(it.sku) });
      r = { item: it, tr, cells: {} };
      st.rows.set(it.sku, r);
      tbody.append(tr);
    } else {
      r.item = { ...r.item, ...it };
    }
    if (r.item.reorder_point != null && r.item.available <= r.item.reorder_point) st.low.add(it.sku); else st.low.delete(it.sku);
    paint(r, flash);
    visible(r);
    return true;
  }

  function visible(r) {
    const show = (!st.query || r.item.sku.toLowerCase().includes(st.query)) && (!st.lowOnly || st.low.has(r.item.sku));
    r.tr.hidden = !show;
  }

  function applyFilter() {
    let n = 0;
    for (const r of st.rows.values()) { visible(r); if (!r.tr.hidden) n++; }
    count.textContent = n + " of " + st.rows.size + " items";
  }

  // resort moves the rows into order; the rows themselves are kept.
  function resort() {
    const { key, desc } = st.sort;
    const rs = [...st.rows.values()].sort((a, b) => {
      const x = a.item[key], y = b.item[key];
      let d = typeof x === "number" || typeof y === "number" ? (x ?? -Infinity) - (y ?? -Infinity) : String(x).localeCompare(String(y));
      if (d === 0) d = a.item.sku.localeCompare(b.item.sku);
      return desc ? -d : d;
    });
    let prev = null;
    for (const r of rs) {
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== r.tr) tbody.insertBefore(r.tr, want);
      prev = r.tr;
    }
  }

  async function loadStores() {
    const { stores } = await api("/v1/stores");
    storesUl.replaceChildren(...stores.map((s) => el("li", { class: "store" + (s === st.store ? " sel" : ""), dataset: { store: s }, onclick: () => select(s) }, s)));
    return stores;
  }

  // load reads every item of the store (page by page) and shows them;
  // rows already shown keep their node. A load asked for while one runs
  // (a gap in the feed) runs once that one is done: what it reads must
  // come after the gap.
  function load() {
    if (st.loading) { st.again = true; return st.loading; }
    st.loading = loadOnce().finally(() => {
      st.loading = null;
      if (st.again) { st.again = false; return load(); }
    });
    return st.loading;
  }

  async function loadOnce() {
    const gen = ++st.loadGen;
    const store = st.store;
    let cursor = null;
    const seen = new Set();
    do {
      const page = await api("/v1/stores/" + enc(store) + "/items?limit=1000" + (cursor ? "&cursor=" + enc(cursor) : ""));
      if (gen !== st.loadGen) return;
      for (const it of page.items) {
        seen.add(it.sku);
        widen(it);
        const r = st.rows.get(it.sku);
        if (r && r.item.version > it.version) continue;
        if (r) r.item.version = 0; // a reload replaces what it shows
        upsert(it, false);
      }
      cursor = page.next_cursor;
    } while (cursor);
    for (const [sku, r] of st.rows) if (!seen.has(sku)) { r.tr.remove(); st.rows.delete(sku); }
    if (st.lowOnly) await loadLow();
    if (gen !== st.loadGen) return;
    st.reloads++;
    root.dataset.loads = st.reloads;
    resort();
    applyFilter();
  }

  // loadLow reads the ledger's low-stock list (GET …/low-stock).
  async function loadLow() {
    try {
      const { items } = await api("/v1/stores/" + enc(st.store) + "/low-stock?limit=1000");
      st.low = new Set(items.map((i) => i.sku));
      note.textContent = "";
    } catch (e) {
      note.textContent = "low-stock list: " + e.message;
    }
  }

  async function select(s) {
    if (!s) return;
    const changed = s !== st.store;
    st.store = s;
    ctx.setHash({ store: s });
    for (const li of storesUl.children) li.classList.toggle("sel", li.dataset.store === s);
    title.textContent = "Items at " + s;
    if (changed) { st.rows.clear(); tbody.replaceChildren(); closeDrawer(); st.loadGen++; }
    // The feed first, then the items: an event in between is applied by
    // version, never lost.
    ctx.follow(s);
    try { await load(); } catch (e) { note.textContent = e.message; }
  }

  // The drawer: one item, its history from the ledger, the other stores.
  async function openDrawer(sku) {
    st.drawer = sku;
    ctx.setHash({ sku });
    drawer.hidden = false;
    drawer.replaceChildren(el("button", { class: "close", onclick: closeDrawer }, "close"), el("h2", {}, st.store + " / " + sku),
      el("dl", { class: "kv", id: "drawer-item" }), el("h3", {}, "In other stores"), el("table", { id: "drawer-stores" }),
      el("h3", {}, "History (ledger)"), el("ul", { class: "plain events", id: "drawer-history" }));
    paintDrawerItem();
    await Promise.all([drawerStores(sku), drawerHistory(sku)]);
  }
  function closeDrawer() { st.drawer = null; drawer.hidden = true; ctx.setHash({ sku: null }); }

  function paintDrawerItem() {
    const r = st.rows.get(st.drawer);
    const dl = drawer.querySelector("#drawer-item");
    if (!r || !dl) return;
    dl.replaceChildren(...st.cols.filter((c) => c.key !== "sku").flatMap((c) => [el("dt", {}, c.label), el("dd", { dataset: { col: c.key } }, r.item[c.key] ?? "—")]),
      el("dt", {}, "updated"), el("dd", {}, fmtTime(r.item.updated_at)));
  }

  async function drawerStores(sku) {
    const t = drawer.querySelector("#drawer-stores");
    try {
      const a = await api("/v1/items/" + enc(sku));
      if (st.drawer !== sku) return;
      t.replaceChildren(el("thead", {}, el("tr", {}, el("th", {}, "store"), el("th", {}, "on hand"), el("th", {}, "available"))),
        el("tbody", {}, a.stores.map((it) => el("tr", { dataset: { store: it.store }, class: it.store === st.store ? "sel" : "" },
          el("td", {}, it.store), el("td", {}, it.on_hand), el("td", {}, it.available)))),
        el("tfoot", {}, el("tr", {}, el("td", {}, "all stores"), el("td", {}), el("td", {}, a.available))));
    } catch (e) { t.replaceChildren(el("tr", {}, el("td", { class: "error" }, e.message))); }
  }

  async function drawerHistory(sku) {
    const ul = drawer.querySelector("#drawer-history");
    try {
      const { events } = await api("/v1/stores/" + enc(st.store) + "/items/" + enc(sku) + "/history?limit=50");
      if (st.drawer !== sku) return;
      ul.replaceChildren(...events.map((ev) => el("li", { dataset: { version: ev.version } },
        `v${ev.version} ${fmtTime(ev.time)} ${ev.type}` + (ev.from ? ` ${ev.qty} ${ev.from} → ${ev.to}` : ` Δ${signed(ev.delta_on_hand)}`) +
        ` → on hand ${ev.on_hand}, reserved ${ev.reserved}` + STATES.slice(1).filter((k) => ev[k]).map((k) => `, ${k.replace("_", " ")} ${ev[k]}`).join("") +
        (ev.reason ? ` “${ev.reason}”` : "") + (ev.principal ? ` by ${ev.principal}` : ""))));
      if (!events.length) ul.replaceChildren(el("li", { class: "muted" }, "no events in the ledger yet"));
    } catch (e) {
      ul.replaceChildren(el("li", { class: "error" }, e instanceof ApiError && e.status === 503 ? "history: " + e.message : e.message));
    }
  }

  let historyTimer = null;
  function onEvents(evs) {
    const latest = new Map(); // per SKU the newest event of the burst
    for (const ev of evs) {
      if (ev.store !== st.store) continue;
      const prev = latest.get(ev.sku);
      if (!prev || prev.version < ev.version) latest.set(ev.sku, ev);
    }
    let moved = false;
    for (const ev of latest.values()) {
      const r = st.rows.get(ev.sku);
      const it = { ...(r ? r.item : { store: ev.store, sku: ev.sku }), version: ev.version, updated_at: ev.time };
      for (const k of ["on_hand", "reserved", "reorder_point", "max_per_customer", ...STATES, "incoming", "safety_stock"]) if (k in ev) it[k] = ev[k];
      it.available = availableOf(it);
      widen(it);
      if (upsert(it, true)) moved = true;
      if (ev.sku === st.drawer) {
        paintDrawerItem();
        clearTimeout(historyTimer); // the ledger trails the feed a little
        historyTimer = setTimeout(() => { if (st.drawer === ev.sku) { drawerHistory(ev.sku); drawerStores(ev.sku); } }, 400);
      }
    }
    if (moved && st.sort.key !== "sku") resort();
    if (moved) applyFilter();
  }

  function onGap() { // events were missed: read everything again
    note.textContent = "the live feed missed events (older than the server keeps): reloaded at " + new Date().toLocaleTimeString();
    load().catch((e) => { note.textContent = e.message; });
  }

  header();
  if (params.get("low") === "1") { lowBox.checked = true; st.lowOnly = true; }
  loadStores().then((stores) => {
    const want = params.get("store");
    const sku = params.get("sku");
    return select(want && stores.includes(want) ? want : stores[0]).then(() => { if (sku && st.rows.has(sku)) openDrawer(sku); });
  }).catch((e) => { note.textContent = e.message; });

  return {
    onEvents, onGap,
    route(h) { const s = h.get("store"); if (s && s !== st.store) select(s); },
    unmount() { clearTimeout(historyTimer); },
  };
}

function signed(n) { return n > 0 ? "+" + n : String(n); }
