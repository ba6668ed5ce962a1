// flash.js: the flash-sale view of one SKU at one store: its available
// units draining live (a chart of the last minutes), sales per second,
// the refusals the API answered for this SKU (409 insufficient stock with
// the SKU short: GET …/items/{sku}/refusals) and for every SKU (the
// server's /metrics), both since watching, and the moment it sold out.
import { api, enc, el } from "./api.js";
import { availableOf } from "./store.js";

const WINDOW = 5000; // ms over which sales per second are averaged

export function mount(root, ctx, params) {
  const st = { store: params.get("store") || "", sku: params.get("sku") || "", item: null, points: [], sales: [],
    sold: 0, soldOut: null, refusals0: null, refusals: 0, sku0: null, skuRefusals: 0, timer: 0 };
  const storeIn = el("input", { id: "flash-store", placeholder: "store", value: st.store, "aria-label": "store" });
  const skuIn = el("input", { id: "flash-sku", placeholder: "SKU", value: st.sku, "aria-label": "SKU" });
  const card = (id, label) => el("div", { class: "card" }, el("div", { class: "label" }, label), el("div", { class: "big", id }, "–"));
  const canvas = el("canvas", { id: "flash-chart", width: 1000, height: 220 });
  const msg = el("div", { class: "muted", id: "flash-note" });
  root.append(el("section", {},
    el("h2", {}, "Flash sale"),
    el("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); watch(storeIn.value.trim(), skuIn.value.trim()); } },
      storeIn, skuIn, el("button", { type: "submit" }, "Watch")),
    el("div", { class: "cards" }, card("flash-available", "available"), card("flash-rate", "sales per second"),
      card("flash-sold", "units sold since watching"), card("flash-refusals", "refusals of this SKU, insufficient stock"),
      card("flash-refusals-all", "refusals, all SKUs"),
      card("flash-soldout", "sold out at")),
    canvas, msg));
  const $ = (id) => root.querySelector("#" + id);

  async function watch(store, sku) {
    if (!store || !sku) { msg.textContent = "name a store and a SKU"; return; }
    Object.assign(st, { store, sku, points: [], sales: [], sold: 0, soldOut: null, item: null, sku0: null, skuRefusals: 0 });
    ctx.setHash({ store, sku });
    ctx.follow(store);
    await reload();
  }

  async function reload() {
    try {
      st.item = await api("/v1/stores/" + enc(st.store) + "/items/" + enc(st.sku));
      st.points.push([Date.now(), st.item.available]);
      if (st.item.available === 0 && !st.soldOut) st.soldOut = new Date(st.item.updated_at);
      msg.textContent = "";
    } catch (e) { msg.textContent = e.message; }
    paint();
  }

  function onEvents(evs) {
    let changed = false;
    for (const ev of evs) {
      if (ev.store !== st.store || ev.sku !== st.sku || !st.item || ev.version <= st.item.version) continue;
      const it = { ...st.item, version: ev.version, updated_at: ev.time };
      for (const k of ["on_hand", "reserved", "committed", "damaged", "quality_control", "display", "safety_stock", "reorder_point"]) if (k in ev) it[k] = ev[k];
      it.available = availableOf(it);
      if (ev.type === "SALE" || ev.type === "COMMIT") {
        const units = -(ev.delta_on_hand || 0) + (ev.delta_committed || 0);
        st.sold += units;
        st.sales.push([Date.now(), units]);
      }
      if (it.available === 0 && st.item.available > 0) st.soldOut = new Date(ev.time);
      if (it.available > 0) st.soldOut = null;
      st.item = it;
      st.points.push([Date.now(), it.available]);
      changed = true;
    }
    if (changed) paint();
  }

  async function pollRefusals() {
    if (st.store && st.sku) {
      const key = st.store + "/" + st.sku;
      try {
        const { refusals } = await api("/v1/stores/" + enc(st.store) + "/items/" + enc(st.sku) + "/refusals");
        if (key === st.store + "/" + st.sku) {
          if (st.sku0 === null) st.sku0 = refusals;
          st.skuRefusals = refusals - st.sku0;
        }
      } catch { /* the count stays as it was */ }
    }
    try {
      const text = await (await fetch("/metrics", { cache: "no-store" })).text();
      const m = text.match(/^inventory_conflicts_total\{type="insufficient-stock"\} (\d+(?:\.\d+)?(?:e\+\d+)?)$/m);
      const n = m ? Number(m[1]) : 0;
      if (st.refusals0 === null) st.refusals0 = n;
      st.refusals = n - st.refusals0;
    } catch { /* the count stays as it was */ }
    paint();
  }

  function paint() {
    const now = Date.now();
    st.sales = st.sales.filter(([t]) => now - t <= WINDOW);
    st.points = st.points.filter(([t]) => now - t <= 600000);
    const rate = st.sales.reduce((a, [, u]) => a + u, 0) / (WINDOW / 1000);
    $("flash-available").textContent = st.item ? st.item.available : "–";
    $("flash-rate").textContent = rate.toFixed(1);
    $("flash-sold").textContent = st.sold;
    $("flash-refusals").textContent = st.sku0 === null ? "–" : st.skuRefusals;
    $("flash-refusals-all").textContent = st.refusals0 === null ? "–" : st.refusals;
    $("flash-soldout").textContent = st.soldOut ? st.soldOut.toLocaleTimeString(undefined, { hour12: false }) : "not yet";
    $("flash-soldout").classList.toggle("bad", !!st.soldOut);
    draw(now);
  }

  function draw(now) {
    const g = canvas.getContext("2d");
    const W = canvas.width, H = canvas.height, pad = 30;
    g.clearRect(0, 0, W, H);
    g.font = "12px system-ui"; g.fillStyle = "#6b7280"; g.strokeStyle = "#e5e7eb";
    g.beginPath(); g.moveTo(pad, H - pad); g.lineTo(W - 5, H - pad); g.stroke();
    const pts = st.points;
    if (!pts.length) { g.fillText("no data yet", pad + 10, H / 2); return; }
    const t0 = Math.min(pts[0][0], now - 60000);
    const top = Math.max(1, ...pts.map(([, v]) => v));
    g.fillText(String(top), 2, pad); g.fillText("0", 2, H - pad);
    g.fillText(Math.round((now - t0) / 1000) + " s ago", pad, H - 10); g.fillText("now", W - 30, H - 10);
    const x = (t) => pad + (W - pad - 5) * (t - t0) / Math.max(1, now - t0);
    const y = (v) => H - pad - (H - 2 * pad) * v / top;
    g.strokeStyle = "#1f3a5f"; g.lineWidth = 2; g.beginPath();
    pts.forEach(([t, v], i) => { if (i === 0) g.moveTo(x(t), y(v)); else { g.lineTo(x(t), y(pts[i - 1][1])); g.lineTo(x(t), y(v)); } });
    g.lineTo(x(now), y(pts[pts.length - 1][1])); g.stroke();
  }

  st.timer = setInterval(pollRefusals, 1000);
  pollRefusals();
  if (st.store && st.sku) watch(st.store, st.sku);
  return {
    onEvents,
    onGap: reload,
    unmount() { clearInterval(st.timer); },
  };
}
