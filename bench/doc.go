// Package bench is the inventory's load harness: it drives a flash sale, a
// mixed chain-store day or a bulk stock import against several targets in one
// run, records every operation's latency in HDR histograms, checks the
// product's invariants at the end (nothing oversold, successes equal the units
// sold, the ledger gap-free and conserved), and writes a summary table, a JSON
// file and an SVG latency plot.
//
// Targets:
//
//   - engine: an in-process engine.Engine on real Redis under its own key
//     prefix, with the persister draining its streams into a ledger in its
//     own PostgreSQL schema (unless Config.NoLedger), and the reservation
//     sweeper.
//   - http: a running server at a URL, driven through the HTTP API
//     (docs/design.md §12) with a bearer token. Its items live in stores named after
//     the run, so a run never touches anyone else's stock.
//   - server: the product's full HTTP server (httpapi) started in-process on
//     a loopback port over an engine target, persister and sweeper beside
//     it, loaded over HTTP exactly like http: what a deployment on this
//     machine would do, to hold against bare.
//   - pg-optimistic: baseline (a), a PostgreSQL-only design: read the row,
//     then UPDATE … WHERE version = $v and INSERT the event in one
//     transaction, retrying a lost race with exponential backoff and jitter.
//   - pg-guarded: baseline (b), a PostgreSQL-only design: one
//     UPDATE … SET quantity = quantity - $n WHERE … AND quantity >= $n and the
//     event INSERT in one transaction.
//   - bare: the reference for what an HTTP front of Redis can do at best: a
//     minimal Fiber handler that runs one EVALSHA of a tiny script (guard,
//     decrement, XADD) per request and nothing else, started in-process on a
//     loopback port and loaded over HTTP exactly like http.
//   - redis-benchmark: the redis-benchmark tool running a trivial EVALSHA
//     unpipelined with 50 clients on the same Redis (flash-sale only), the
//     ceiling of one round trip per request.
//
// Targets run one after another, never at once, so each has the machine to
// itself; every load is bounded by a duration and an operation count.
//
// The load is closed-loop by default (each worker sends its next request when
// the last one answered: throughput at saturation). Config.Rate paces it
// open-loop instead, with latency counted from when each request was due, to
// read p99 at a given fraction of peak. The HTTP targets can also be driven
// by wrk (Config.Client), whose counts the checker verifies the same way.
//
// Rehearse is the other half: a rehearsal of a peak against a running
// deployment from a Plan (YAML or JSON): stages of open-loop arrival rates
// with linear ramps, a weighted mix of operations, a hot SKU, customers
// with purchase limits, Idempotency-Keys with retries of unknown outcomes,
// and thresholds that decide whether it passed. The load comes from this
// process or from Worker processes (`inventory bench --worker`) that take
// shares of one schedule and one start time; their HDR histograms travel
// in the V2 encoding and merge exactly. The checker reads every item the
// run made (and the ledger when given its URL) afterwards; reports are
// JSON, text and a self-contained HTML page, and Compare flags regressions
// between two runs.
//
// Throughput is counted in the scenario's unit (sales, operations or import
// lines) per second of the load's wall time; the ratios compare targets
// measured in the same run on the same machine, which is the only
// comparison a shared or small machine supports.
package bench
