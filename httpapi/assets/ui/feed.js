// feed.js: the live event feed (GET /v1/events, Server-Sent Events) read
// with fetch, so the token travels in a header and never in the URL.
//
// - Every "id:" line moves the resume position, kept in sessionStorage, so
//   a reconnect (or a reload of the tab) resumes exactly after the last
//   event seen.
// - "event: gap" means events after that position were trimmed already:
//   the feed calls onGap, the view reloads what it shows, and the feed
//   carries on (no reconnect loop). The server's opening id is already the
//   position after the gap, so a reconnect before the next event resumes
//   from there and is not told of the same gap again.
// - start() aborts the request it had open before it opens another, so at
//   most one feed runs per page.
// - Events are queued and handed to onEvents once per animation frame, so
//   a burst of thousands is one update of the page.
import { token } from "./api.js";

const POS_KEY = "inventory-feed-position";

export class Feed {
  constructor({ onEvents, onGap, onStatus }) {
    this.onEvents = onEvents;
    this.onGap = onGap;
    this.onStatus = onStatus || (() => {});
    this.ctrl = null;
    this.queue = [];
    this.scheduled = false;
    this.store = "";
    // Counters, shown in the status line's data attributes (and read by
    // the browser tests).
    this.connects = 0;
    this.gaps = 0;
  }

  get position() { return sessionStorage.getItem(POS_KEY + ":" + this.store) || ""; }
  set position(id) { sessionStorage.setItem(POS_KEY + ":" + this.store, id); }

  // start follows store's events ("" for every store the token may read),
  // resuming from the position saved for it; the previous request is
  // aborted first.
  start(store) {
    this.stop();
    this.store = store || "";
    const ctrl = new AbortController();
    this.ctrl = ctrl;
    this.run(ctrl.signal);
  }

  status(state, detail) {
    this.state = state;
    this.detail = detail;
    this.onStatus(state, this, detail);
  }

  stop() {
    if (this.ctrl) this.ctrl.abort();
    this.ctrl = null;
  }

  async run(signal) {
    let backoff = 500;
    while (!signal.aborted) {
      try {
        const headers = { Authorization: "Bearer " + token(), Accept: "text/event-stream" };
        const pos = this.position;
        if (pos) headers["Last-Event-ID"] = pos;
        this.connects++;
        this.status("connecting");
        const url = "/v1/events" + (this.store ? "?store=" + encodeURIComponent(this.store) : "");
        const res = await fetch(url, { headers, signal, cache: "no-store" });
        if (res.status === 400 && pos) {
          // The saved position belongs to another deployment (say, another
          // number of partitions): start from now and reload.
          sessionStorage.removeItem(POS_KEY + ":" + this.store);
          this.gap({ detail: "the saved feed position is not valid here" });
          continue;
        }
        if (res.status === 401 || res.status === 403) {
          this.status("refused", res.status);
          return;
        }
        if (!res.ok) throw new Error("feed answered " + res.status);
        await this.read(res.body, signal, () => { backoff = 500; this.status("live"); });
        if (signal.aborted) return;
        this.status("reconnecting", "the feed ended");
      } catch (e) {
        if (signal.aborted) return;
        this.status("reconnecting", e.message);
      }
      await sleep(backoff, signal);
      backoff = Math.min(backoff * 2, 10000);
    }
  }

  async read(body, signal, opened) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    signal.addEventListener("abort", () => reader.cancel().catch(() => {}), { once: true });
    let buf = "";
    let first = true;
    for (;;) {
      const { value, done } = await reader.read();
      if (done || signal.aborted) return;
      if (first) { first = false; opened(); }
      buf += value.replace(/\r\n?/g, "\n");
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        if (signal.aborted) return; // the feed moved to another store
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        this.message(block);
      }
    }
  }

  // message handles one SSE message: its fields per the EventSource rules
  // (one optional space after the colon; comment lines start with ":").
  message(block) {
    let event = "message", data = [], id = null;
    for (const line of block.split("\n")) {
      if (line === "" || line.startsWith(":")) continue;
      const c = line.indexOf(":");
      const field = c < 0 ? line : line.slice(0, c);
      let val = c < 0 ? "" : line.slice(c + 1);
      if (val.startsWith(" ")) val = val.slice(1);
      if (field === "event") event = val;
      else if (field === "data") data.push(val);
      else if (field === "id" && !val.includes("\0")) id = val;
    }
    if (id !== null) this.position = id;
    if (!data.length) return;
    let msg;
    try { msg = JSON.parse(data.join("\n")); } catch { return; }
    if (event === "gap") { this.gap(msg); return; }
    if (event !== "message" || !msg || !msg.sku) return;
    this.queue.push(msg);
    if (!this.scheduled) {
      this.scheduled = true;
      // One flush per frame; the timeout covers a hidden tab, where
      // animation frames stop.
      const flush = () => this.flush();
      requestAnimationFrame(flush);
      setTimeout(flush, 250);
    }
  }

  flush() {
    if (!this.scheduled) return;
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length) this.onEvents(batch);
  }

  gap(msg) {
    this.gaps++;
    this.queue = [];
    this.onStatus(this.state, this, this.detail);
    this.onGap(msg);
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
  });
}
