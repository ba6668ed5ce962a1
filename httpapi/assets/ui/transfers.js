// transfers.js: the transfers view of one store: the transfers in transit
// to it (inbound, from another location or a supplier) and from it
// (outbound), each with its lines and what has become of their units. An
// inbound transfer is received from the page: per line the units received,
// damaged and missing (POST /v1/transfers/{id}/receive), in one or several
// receipts. The view follows the store's feed: a transfer event of the
// store re-reads that transfer; the list is read again every few seconds,
// since the other end's steps show in the other store's feed.
import { api, enc, el, fmtTime, ApiError } from "./api.js";

const REFRESH = 5000;

function openOf(l) { return l.qty - l.received - l.damaged - l.missing; }

export function mount(root, ctx, params) {
  const st = { store: "", shown: new Map(), loads: 0, gen: 0, timer: 0 };
  const storesUl = el("ul", { class: "plain", id: "stores" });
  const title = el("h2", { id: "title" }, "Transfers");
  const note = el("div", { class: "muted", id: "note" });
  const inbound = el("div", { id: "transfers-in" });
  const outbound = el("div", { id: "transfers-out" });
  root.append(el("div", { class: "grid" },
    el("section", {}, el("h2", {}, "Stores"), storesUl),
    el("section", {}, title, note,
      el("h3", {}, "In transit to this store"), inbound,
      el("h3", {}, "In transit from this store"), outbound)));

  async function loadStores() {
    const { stores } = await api("/v1/stores");
    storesUl.replaceChildren(...stores.map((s) => el("li", { class: "store" + (s === st.store ? " sel" : ""), dataset: { store: s }, onclick: () => select(s) }, s)));
    return stores;
  }

  async function select(s) {
    if (!s) return;
    if (s !== st.store) { st.shown.clear(); inbound.replaceChildren(); outbound.replaceChildren(); }
    st.store = s;
    ctx.setHash({ store: s });
    for (const li of storesUl.children) li.classList.toggle("sel", li.dataset.store === s);
    title.textContent = "Transfers of " + s;
    ctx.follow(s);
    await load();
  }

  // load reads every transfer in transit with an end at the store (page by
  // page). Transfers shown before that are no longer in transit stay, with
  // their new status, until the store changes.
  async function load() {
    const gen = ++st.gen;
    const store = st.store;
    const found = [];
    let cursor = null;
    try {
      do {
        const page = await api("/v1/transfers?status=in_transit&limit=1000&store=" + enc(store) + (cursor ? "&cursor=" + enc(cursor) : ""));
        found.push(...page.transfers);
        cursor = page.next_cursor;
      } while (cursor);
      if (gen !== st.gen) return;
      const ids = new Set(found.map((t) => t.id));
      for (const t of found) show(t);
      // One that left the in-transit list meanwhile: read its new status.
      await Promise.all([...st.shown.keys()].filter((id) => !ids.has(id) && st.shown.get(id).t.status === "in_transit").map(refetch));
      if (gen !== st.gen) return;
      st.loads++;
      root.dataset.loads = st.loads;
      if (note.dataset.kind !== "gap") note.textContent = "";
      empty();
    } catch (e) { note.textContent = e.message; }
  }

  async function refetch(id) {
    try { show(await api("/v1/transfers/" + enc(id))); } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) note.textContent = e.message;
    }
  }

  function empty() {
    for (const box of [inbound, outbound]) {
      const none = box.querySelector(".none");
      const any = box.querySelector(".transfer");
      if (!any && !none) box.append(el("p", { class: "muted none" }, "None."));
      if (any && none) none.remove();
    }
  }

  // show draws a transfer, or redraws it when its record changed; a
  // receipt form being filled in is kept while the record is the same.
  function show(t) {
    if (t.to !== st.store && t.from !== st.store) return;
    const prev = st.shown.get(t.id);
    if (prev && prev.t.updated_at === t.updated_at && prev.t.status === t.status) return;
    const node = card(t);
    if (prev) prev.node.replaceWith(node); else (t.to === st.store ? inbound : outbound).append(node);
    st.shown.set(t.id, { t, node });
    empty();
  }

  function card(t) {
    const incoming = t.to === st.store;
    const open = t.lines.reduce((a, l) => a + openOf(l), 0);
    const status = t.status === "in_transit" && open < t.lines.reduce((a, l) => a + l.qty, 0) ? "partly received" : t.status.replace("_", " ");
    const inputs = new Map(); // sku → {received, damaged, missing}
    const num = (sku, kind, v) => el("input", { type: "number", min: "0", step: "1", value: String(v), name: kind, class: "qty", "aria-label": `${sku} ${kind}`, dataset: { sku, kind } });
    const rows = t.lines.map((l) => {
      const o = openOf(l);
      const tr = el("tr", { dataset: { sku: l.sku } },
        el("td", {}, l.sku), el("td", { dataset: { col: "qty" } }, l.qty), el("td", { dataset: { col: "received" } }, l.received),
        el("td", { dataset: { col: "damaged" } }, l.damaged), el("td", { dataset: { col: "missing" } }, l.missing),
        el("td", { dataset: { col: "open" } }, o));
      if (incoming && t.status === "in_transit") {
        if (o > 0) {
          const f = { received: num(l.sku, "received", o), damaged: num(l.sku, "damaged", 0), missing: num(l.sku, "missing", 0) };
          inputs.set(l.sku, f);
          tr.append(el("td", {}, f.received), el("td", {}, f.damaged), el("td", {}, f.missing));
        } else tr.append(el("td", { colspan: "3", class: "muted" }, "done"));
      }
      return tr;
    });
    const heads = ["SKU", "qty", "received", "damaged", "missing", "open"];
    if (incoming && t.status === "in_transit") heads.push("receive now", "damaged now", "missing now");
    const msg = el("span", { class: "error receive-note" });
    let key = "ui-receive-" + t.id + "-" + Math.random().toString(36).slice(2);
    async function receive(e) {
      e.preventDefault();
      msg.textContent = "";
      const lines = [];
      for (const [sku, f] of inputs) {
        const line = { sku };
        let units = 0, bad = false;
        for (const k of ["received", "damaged", "missing"]) {
          const v = f[k].value.trim() === "" ? 0 : Number(f[k].value);
          if (!Number.isInteger(v) || v < 0) bad = true;
          if (v > 0) { line[k] = v; units += v; }
        }
        if (bad) { msg.textContent = `${sku}: counts are whole numbers, 0 or more`; return; }
        if (units > 0) lines.push(line);
      }
      if (!lines.length) { msg.textContent = "count at least one unit"; return; }
      button.disabled = true;
      try {
        // The same key for every try of this receipt: a retry after a lost
        // answer is replayed, never applied twice.
        show(await api("/v1/transfers/" + enc(t.id) + "/receive", { method: "POST", body: { lines }, headers: { "Idempotency-Key": key } }));
        key = "ui-receive-" + t.id + "-" + Math.random().toString(36).slice(2);
      } catch (err) {
        msg.textContent = err.message;
        if (err instanceof ApiError && err.status === 409) refetch(t.id);
      } finally { button.disabled = false; }
    }
    const button = el("button", { type: "submit", class: "receive" }, "Receive");
    const table = el("table", { class: "lines" }, el("thead", {}, el("tr", {}, heads.map((h) => el("th", {}, h)))), el("tbody", {}, rows));
    const from = t.from == null ? "a supplier" : t.from;
    return el("div", { class: "transfer finding", dataset: { transfer: t.id, status: t.status, direction: incoming ? "in" : "out" } },
      el("div", {}, el("b", {}, incoming ? "from " + from : "to " + t.to), " · ", el("code", {}, t.id), " ",
        el("span", { class: "pill " + (t.status === "received" ? "ok" : t.status === "cancelled" ? "bad" : ""), dataset: { col: "status" } }, status),
        t.reference ? ` · ref ${t.reference}` : "", t.expected_at ? ` · expected ${fmtTime(t.expected_at)}` : "",
        ` · created ${fmtTime(t.created_at)}`, ` · ${open} open`),
      incoming && t.status === "in_transit" && inputs.size
        ? el("form", { class: "receive-form", onsubmit: receive }, table, el("div", { class: "toolbar" }, button, msg))
        : table);
  }

  function onEvents(evs) {
    const ids = new Set();
    for (const ev of evs) if (ev.store === st.store && ev.transfer_id) ids.add(ev.transfer_id);
    for (const id of ids) refetch(id);
  }

  function onGap() {
    note.dataset.kind = "gap";
    note.textContent = "the live feed missed events (older than the server keeps): reloaded at " + new Date().toLocaleTimeString();
    return load();
  }

  st.timer = setInterval(() => { if (st.store) load(); }, REFRESH);
  loadStores().then((stores) => {
    const want = params.get("store");
    return select(want && stores.includes(want) ? want : stores[0]);
  }).catch((e) => { note.textContent = e.message; });

  return {
    onEvents, onGap,
    route(h) { const s = h.get("store"); if (s && s !== st.store) select(s); },
    unmount() { clearInterval(st.timer); },
  };
}
