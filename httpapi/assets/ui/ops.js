// ops.js: the operations view (admin): readiness, persister lag and dead
// letters per partition, reconciliation runs, rebuilds, and the conflict
// inbox, where an admin resolves a finding with a correcting adjustment and
// a note, or dismisses it with a note.
import { api, el, fmtTime } from "./api.js";

const REFRESH = 3000;

export function mount(root, ctx) {
  const parts = el("table", { id: "ops-partitions" });
  const runs = el("table", { id: "ops-runs" });
  const dead = el("ul", { class: "plain events", id: "ops-dead" });
  const summary = el("div", { class: "cards", id: "ops-summary" });
  const inbox = el("div", { id: "inbox" });
  const closed = el("div", { id: "inbox-closed" });
  const note = el("div", { class: "error", id: "ops-note" });
  root.append(note, summary,
    el("div", { class: "cols2" },
      el("section", {}, el("h2", {}, "Partitions"), parts, el("h3", {}, "Dead letters"), dead),
      el("section", {}, el("h2", {}, "Reconciliation runs"), runs)),
    el("section", { class: "spaced" }, el("h2", {}, "Conflict inbox"), inbox, el("h3", {}, "Decided"), closed));
  ctx.follow(""); // findings resolved here show in the stores' feeds

  async function refresh() {
    try {
      const ov = await api("/v1/admin/operations");
      note.textContent = "";
      paintOverview(ov);
    } catch (e) { note.textContent = "operations: " + e.message; }
  }

  function paintOverview(ov) {
    const notReady = ov.partitions.filter((p) => !p.ready).length;
    const lag = ov.partitions.reduce((a, p) => a + Math.max(p.lag, 0), 0);
    const dl = ov.partitions.reduce((a, p) => a + p.dead_letters, 0);
    const card = (label, v, bad) => el("div", { class: "card" }, el("div", { class: "label" }, label), el("div", { class: "big" + (bad ? " bad" : "") }, v));
    summary.replaceChildren(
      card("partitions ready", `${ov.partitions.length - notReady} / ${ov.partitions.length}`, notReady > 0),
      card("persister lag (events)", lag, lag > 1000),
      card("dead letters", dl, dl > 0),
      card("open findings", ov.open_findings, ov.open_findings > 0),
      card("rebuilds (this process)", ov.rebuilds ? ov.rebuilds.partitions : "–", false));
    parts.replaceChildren(el("thead", {}, el("tr", {}, ["partition", "ready", "ready since", "persister lag", "stream", "dead letters"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ov.partitions.map((p) => el("tr", { dataset: { partition: p.partition } },
        el("td", {}, p.partition),
        el("td", {}, el("span", { class: "pill " + (p.ready ? "ok" : "bad") }, p.ready ? "ready" : "not ready")),
        el("td", {}, p.ready_since ? fmtTime(p.ready_since) : "–"),
        el("td", { dataset: { col: "lag" } }, p.lag < 0 ? "no persister yet" : p.lag),
        el("td", {}, p.stream_length),
        el("td", { class: p.dead_letters ? "bad" : "" }, p.dead_letters)))));
    dead.replaceChildren(...(ov.dead_letters.length ? ov.dead_letters.map((d) => el("li", {}, `p${d.partition} ${d.entry_id} (${d.consumer}): ${d.error}`))
      : [el("li", { class: "muted" }, "none")]));
    runs.replaceChildren(el("thead", {}, el("tr", {}, ["run", "mode", "finished", "items", "lagging", "findings", ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, ov.runs.map((r) => el("tr", {},
        el("td", {}, r.id), el("td", {}, r.mode), el("td", {}, r.finished_at ? fmtTime(r.finished_at) : "running"),
        el("td", {}, r.items_checked), el("td", {}, r.lagging), el("td", { class: r.findings ? "bad" : "" }, r.findings),
        el("td", { class: "error" }, r.error)))));
  }

  function state(s) {
    if (!s) return "—";
    const parts = [`v${s.version ?? "?"}`, `on hand ${s.on_hand ?? "?"}`, `reserved ${s.reserved ?? "?"}`];
    for (const k of ["committed", "damaged", "quality_control", "display"]) if (s[k]) parts.push(`${k.replace("_", " ")} ${s[k]}`);
    return parts.join(", ");
  }

  function findingCard(f) {
    const msg = el("span", { class: "error" });
    const delta = el("input", { name: "delta", type: "number", step: "1", placeholder: "Δ on hand", "aria-label": "correcting adjustment" });
    const noteIn = el("input", { name: "note", placeholder: "note: what was decided and why", "aria-label": "note", maxlength: "2000" });
    const decide = async (action) => {
      msg.textContent = "";
      const body = { note: noteIn.value };
      if (action === "resolve") body.delta = Number(delta.value);
      if (action === "resolve" && (!Number.isInteger(body.delta) || body.delta === 0)) { msg.textContent = "give a non-zero whole adjustment"; return; }
      try {
        await api(`/v1/admin/findings/${f.id}/${action}`, { method: "POST", body, headers: { "Idempotency-Key": `ui-${action}-${f.id}-${Date.now()}` } });
        await loadFindings();
        refresh();
      } catch (e) { msg.textContent = e.message; }
    };
    const open = f.status === "open";
    return el("div", { class: "finding", dataset: { finding: f.id, kind: f.kind, status: f.status } },
      el("div", {}, el("b", {}, f.kind.replace("_", " ")), " at ", el("b", {}, `${f.store} / ${f.sku}`), ` v${f.version} · found ${fmtTime(f.found_at)}`,
        f.reports > 1 ? ` · reported ${f.reports} times` : "", " ", el("span", { class: "pill " + (open ? "bad" : "ok") }, f.status)),
      el("dl", { class: "kv" }, el("dt", {}, "before"), el("dd", { dataset: { side: "before" } }, state(f.before)),
        el("dt", {}, "after"), el("dd", { dataset: { side: "after" } }, state(f.after))),
      el("div", { class: "muted" }, f.action, f.detail ? " — " + f.detail : ""),
      open ? el("form", { onsubmit: (e) => { e.preventDefault(); decide("resolve"); } }, delta, noteIn,
        el("button", { type: "submit", class: "resolve" }, "Resolve with adjustment"),
        el("button", { type: "button", class: "dismiss", onclick: () => decide("dismiss") }, "Dismiss"), msg)
        : el("div", { class: "resolution" }, `${f.resolution.outcome} by ${f.resolution.principal} at ${fmtTime(f.resolution.resolved_at)}`,
          f.resolution.delta != null ? ` · adjusted on hand by ${f.resolution.delta} (ledger v${f.resolution.event_version})` : "", ` · “${f.resolution.note}”`));
  }

  async function loadFindings() {
    try {
      const [o, c] = await Promise.all([api("/v1/admin/findings?status=open"), api("/v1/admin/findings?status=closed&limit=20")]);
      inbox.replaceChildren(...(o.findings.length ? o.findings.map(findingCard) : [el("p", { class: "muted", id: "inbox-empty" }, "No open findings.")]));
      closed.replaceChildren(...(c.findings.length ? c.findings.map(findingCard) : [el("p", { class: "muted" }, "None yet.")]));
      root.dataset.findings = o.findings.length;
    } catch (e) { inbox.replaceChildren(el("p", { class: "error" }, "inbox: " + e.message)); }
  }

  const timer = setInterval(refresh, REFRESH);
  refresh();
  loadFindings();
  return { onGap: refresh, unmount() { clearInterval(timer); } };
}
