package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"time"
)

// outcome is what a scenario's load left for the report and the checker.
type outcome struct {
	rec     *recorder
	elapsed time.Duration
	// units counts the work done (sales, operations or lines); unit names it.
	units int64
	unit  string
	// checks and violations are the checker's verdicts.
	checks     []Check
	violations []string
	extra      map[string]any
	// rps, latency and counts, when set, are measured by an outside tool
	// (redis-benchmark, whose p90 column is its p95; wrk) rather than the
	// recorder.
	rps     float64
	latency *Latency
	counts  *counts
	// cpu is the CPU used during the load (see TargetResult.CPU).
	cpu map[string]float64
}

// counts are an outside tool's outcome counts.
type counts struct {
	ok, refused, errors, unknown int64
	kinds                        map[string]int64
}

// Check is one invariant the checker verified, and what it found.
type Check struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail"`
}

func (o *outcome) check(name string, passed bool, format string, a ...any) {
	c := Check{Name: name, Passed: passed, Detail: fmt.Sprintf(format, a...)}
	o.checks = append(o.checks, c)
	if !passed {
		o.violations = append(o.violations, name+": "+c.Detail)
	}
}

// checkLedger runs the target's ledger check, if it has one.
func (o *outcome) checkLedger(ctx context.Context, cfg Config, name string, t target, states []ItemState) error {
	lc, ok := t.(ledgerChecker)
	if !ok {
		return nil
	}
	if !lc.HasLedger() {
		o.checks = append(o.checks, Check{Name: "ledger", Passed: true, Detail: "not checked: no ledger (engine with --no-ledger, or http without --ledger-schema)"})
		return nil
	}
	fmt.Fprintf(cfg.Progress, "[%s] checking the ledger of %d items (waiting for it to drain)\n", name, len(states))
	began := time.Now()
	v, err := lc.CheckLedger(ctx, states)
	o.extra["ledger_check_seconds"] = time.Since(began).Seconds()
	if _, ok := t.(persisting); ok && o.counts == nil && o.elapsed > 0 {
		// The persister beside the target: how many events it wrote while
		// the load ran, per second; a drain that takes long after the load
		// means it fell behind.
		o.extra["persisted_events_during_load"] = o.rec.persisted
		o.extra["persisted_events_per_sec"] = float64(o.rec.persisted) / o.elapsed.Seconds()
	}
	if err != nil {
		return err
	}
	o.check("ledger", len(v) == 0, "%s", summarize(v, fmt.Sprintf("drained; %d items gap-free from version 1, deltas sum to the state", len(states))))
	o.violations = append(o.violations, v...)
	return nil
}

func summarize(v []string, ok string) string {
	switch len(v) {
	case 0:
		return ok
	case 1:
		return v[0]
	}
	return fmt.Sprintf("%s (and %d more)", v[0], len(v)-1)
}

// warm lets a target open a connection per worker before its load.
func warm(ctx context.Context, cfg Config, t target) {
	if w, ok := t.(warmer); ok {
		w.Warm(ctx, cfg.Workers)
	}
}

func (c Config) load(name string, t target) load {
	l := load{name: name, workers: c.Workers, duration: c.Duration, maxOps: c.MaxOps, rate: c.Rate, progress: c.Progress, now: c.Now}
	if p, ok := t.(persisting); ok {
		l.persisted = p.Persisted
	}
	if c.CPUProfile {
		l.profile = filepath.Join(c.OutDir, fmt.Sprintf("%s-%s-%s.pprof", c.Scenario, c.Now().UTC().Format("20060102T150405Z"), name))
	}
	return l
}

// flashSale: one hot SKU with Stock units; Workers buyers each buy Qty
// units per checkout until they are refused (sold out), the time is up or
// MaxOps checkouts have started.
func flashSale(ctx context.Context, cfg Config, name, run string, t target) (*outcome, error) {
	store, sku := "fs-"+run, "hot"
	seed := []SeedItem{{Store: store, SKU: sku, OnHand: cfg.Stock}}
	if err := t.Seed(ctx, seed); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	warm(ctx, cfg, t)
	var sold, unknown, soldOutSeen atomic.Int64
	lines := []Line{{SKU: sku, Qty: cfg.Qty}}
	var o *outcome
	if base, auth, isHTTP := httpEndpoint(t); isHTTP && cfg.Client == ClientWrk {
		var stopProfile func()
		if l := cfg.load(name, t); l.profile != "" {
			if stop, err := startProfile(l.profile); err != nil {
				fmt.Fprintf(cfg.Progress, "[%s] no CPU profile: %v\n", name, err)
			} else {
				stopProfile = stop
			}
		}
		c, err := runWrk(ctx, cfg, name, base, auth, store, lines)
		if stopProfile != nil {
			stopProfile()
		}
		if err != nil {
			return nil, err
		}
		sold.Store(c.ok * cfg.Qty)
		soldOutSeen.Store(c.refused)
		// A request in flight when wrk stops may have sold without being
		// counted: one per connection at most. Other statuses and socket
		// errors may have sold too.
		unknown.Store((int64(cfg.Workers) + c.other + c.errors) * cfg.Qty)
		o = &outcome{rec: newRecorder(time.Now(), time.Second), elapsed: c.elapsed, units: c.ok, unit: "sales", latency: &c.latency,
			counts: &counts{ok: c.ok, refused: c.refused, errors: c.other + c.errors, unknown: int64(cfg.Workers) + c.other + c.errors,
				kinds: map[string]int64{"other_status": c.other, "socket": c.errors}}, cpu: c.cpu}
	} else {
		rec, elapsed := cfg.load(name, t).run(ctx, func(ctx context.Context, w int, rec *recorder) bool {
			err := timed(rec, w, time.Now, func() error { return t.Checkout(ctx, store, lines) })
			kind, unk := classify(err)
			switch {
			case kind == "":
				sold.Add(cfg.Qty)
			case kind == kindRefused:
				soldOutSeen.Add(1)
				return false
			case unk:
				unknown.Add(cfg.Qty)
			}
			return true
		})
		o = &outcome{rec: rec, elapsed: elapsed, units: sold.Load() / cfg.Qty, unit: "sales"}
	}
	states, err := t.Items(ctx, seed)
	if err != nil {
		return nil, fmt.Errorf("read final state: %w", err)
	}
	st := states[0]
	s, u := sold.Load(), unknown.Load()
	removed := cfg.Stock - st.OnHand
	o.extra = map[string]any{"stock": cfg.Stock, "units_sold": s, "final_on_hand": st.OnHand, "final_reserved": st.Reserved,
		"final_version": st.Version, "refusals": soldOutSeen.Load(), "unknown_units": u}
	o.check("item exists", st.Found, "%s/%s found: %v", store, sku, st.Found)
	o.check("never oversold", st.OnHand >= 0 && st.Reserved >= 0 && st.Reserved <= st.OnHand && s <= cfg.Stock,
		"final on_hand %d reserved %d, %d units sold of %d", st.OnHand, st.Reserved, s, cfg.Stock)
	o.check("successes equal units sold", removed >= s && removed <= s+u,
		"stock %d − final %d = %d units gone; successes sold %d (+ up to %d of unknown outcome)", cfg.Stock, st.OnHand, removed, s, u)
	if soldOutSeen.Load() > 0 {
		o.check("refused only when sold out", st.OnHand < cfg.Qty,
			"%d refusals; %d units left at the end", soldOutSeen.Load(), st.OnHand)
	}
	if st.Version > 0 {
		o.check("one version per change", st.Version-1 >= s/cfg.Qty && st.Version-1 <= (s+u)/cfg.Qty,
			"version %d after %d sales", st.Version, s/cfg.Qty)
	}
	if err := o.checkLedger(ctx, cfg, name, t, states); err != nil {
		return nil, err
	}
	return o, nil
}

// chain is the mixed scenario's items and what the load did to them.
type chain struct {
	cfg    Config
	stores []string
	seed   []SeedItem
	// delta[i] is the change of seed[i]'s on_hand by successful operations;
	// slack[i] bounds the change of operations of unknown outcome.
	delta, slack []atomic.Int64
}

func newChain(cfg Config, run string) *chain {
	c := &chain{cfg: cfg}
	rng := rand.New(rand.NewPCG(1, 2))
	for s := 0; s < cfg.Stores; s++ {
		store := fmt.Sprintf("b%s-s%02d", run, s)
		c.stores = append(c.stores, store)
		for k := 0; k < cfg.SKUs; k++ {
			c.seed = append(c.seed, SeedItem{Store: store, SKU: "sku" + strconv.Itoa(k), OnHand: 10 + rng.Int64N(90)})
		}
	}
	c.delta = make([]atomic.Int64, len(c.seed))
	c.slack = make([]atomic.Int64, len(c.seed))
	return c
}

// pick returns distinct SKU indexes of a store, skewed to the first SKUs
// (the bestsellers).
func (c *chain) pick(rng *rand.Rand, n int) []int {
	seen := map[int]bool{}
	out := make([]int, 0, n)
	for len(out) < n {
		f := rng.Float64()
		k := int(float64(c.cfg.SKUs) * f * f * f)
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	sort.Ints(out)
	return out
}

func (c *chain) index(store, sku int) int { return store*c.cfg.SKUs + sku }

// note applies the outcome of an operation that changed on_hand by d per
// item to the chain's books.
func (c *chain) note(err error, idx []int, d []int64) {
	kind, unknown := classify(err)
	for i, x := range idx {
		switch {
		case kind == "":
			c.delta[x].Add(d[i])
		case unknown:
			if d[i] < 0 {
				c.slack[x].Add(-d[i])
			} else {
				c.slack[x].Add(d[i])
			}
		}
	}
}

// mixed: Workers tills across Stores stores: 45% multi-line checkouts, 25%
// reads, 15% adjustments (mostly restocks), 15% reservations of which half
// commit, 30% release and the rest expire.
func mixed(ctx context.Context, cfg Config, name, run string, t target) (*outcome, error) {
	ft, ok := t.(fullTarget)
	if !ok {
		return nil, fmt.Errorf("%s cannot run the mixed scenario", name)
	}
	c := newChain(cfg, run)
	if err := t.Seed(ctx, c.seed); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	warm(ctx, cfg, t)
	ttl := int(cfg.ReservationTTL / time.Second)
	var lastReserve atomic.Int64
	rngs := make([]*rand.Rand, cfg.Workers)
	for w := range rngs {
		rngs[w] = rand.New(rand.NewPCG(uint64(w), 7))
	}
	var units, committed, released, expiredLeft atomic.Int64
	rec, elapsed := cfg.load(name, t).run(ctx, func(ctx context.Context, w int, rec *recorder) bool {
		rng := rngs[w]
		s := w % cfg.Stores
		store := c.stores[s]
		r := rng.IntN(100)
		var err error
		switch {
		case r < 45:
			ks := c.pick(rng, 1+rng.IntN(3))
			lines := make([]Line, len(ks))
			idx := make([]int, len(ks))
			d := make([]int64, len(ks))
			for i, k := range ks {
				lines[i] = Line{SKU: "sku" + strconv.Itoa(k), Qty: 1 + rng.Int64N(2)}
				idx[i], d[i] = c.index(s, k), -lines[i].Qty
			}
			err = timed(rec, w, time.Now, func() error { return ft.Checkout(ctx, store, lines) })
			c.note(err, idx, d)
		case r < 70:
			k := c.pick(rng, 1)[0]
			err = timed(rec, w, time.Now, func() error { return ft.Get(ctx, store, "sku"+strconv.Itoa(k)) })
		case r < 85:
			k := c.pick(rng, 1)[0]
			delta := 1 + rng.Int64N(20)
			if rng.IntN(10) == 0 {
				delta = -1 - rng.Int64N(3) // shrinkage
			}
			err = timed(rec, w, time.Now, func() error { return ft.Adjust(ctx, store, "sku"+strconv.Itoa(k), delta) })
			c.note(err, []int{c.index(s, k)}, []int64{delta})
		default:
			ks := c.pick(rng, 1+rng.IntN(2))
			lines := make([]Line, len(ks))
			idx := make([]int, len(ks))
			d := make([]int64, len(ks))
			for i, k := range ks {
				lines[i] = Line{SKU: "sku" + strconv.Itoa(k), Qty: 1}
				idx[i], d[i] = c.index(s, k), -1
			}
			var id string
			err = timed(rec, w, time.Now, func() error {
				var e error
				id, e = ft.Reserve(ctx, store, lines, ttl)
				return e
			})
			if kind, unk := classify(err); kind != "" {
				if unk { // a hold that may exist expires by itself: on_hand unchanged
					lastReserve.Store(time.Now().UnixNano())
				}
				break
			}
			lastReserve.Store(time.Now().UnixNano())
			units.Add(1) // the hold; its commit or release counts below
			switch f := rng.IntN(10); {
			case f < 5:
				err = timed(rec, w, time.Now, func() error { return ft.Commit(ctx, id) })
				c.note(err, idx, d)
				if err == nil {
					committed.Add(1)
				}
			case f < 8:
				err = timed(rec, w, time.Now, func() error { return ft.Release(ctx, id) })
				if err == nil {
					released.Add(1)
				}
			default:
				expiredLeft.Add(1)
				return true
			}
		}
		if err == nil {
			units.Add(1)
		}
		return true
	})
	o := &outcome{rec: rec, elapsed: elapsed, units: units.Load(), unit: "ops"}
	o.extra = map[string]any{"items": len(c.seed), "committed": committed.Load(), "released": released.Load(), "left_to_expire": expiredLeft.Load()}
	// Holds left to expire must be gone within 2s of their expiry
	// (docs/design.md §3.5): poll until none is held. Only a read that began after that
	// bound and still finds a hold breaks the contract (a slow read, over
	// HTTP, may have met an item before its hold expired).
	var states []ItemState
	deadline := time.Now()
	if last := lastReserve.Load(); last > 0 {
		deadline = time.Unix(0, last).Add(cfg.ReservationTTL + 2500*time.Millisecond)
	}
	for {
		var err error
		began := time.Now()
		states, err = t.Items(ctx, c.seed)
		if err != nil {
			return nil, fmt.Errorf("read final state: %w", err)
		}
		held := false
		for _, st := range states {
			held = held || st.Reserved != 0
		}
		if !held || began.After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	var bad []string
	var missing, negative, held int
	for i, st := range states {
		want, slack := c.seed[i].OnHand+c.delta[i].Load(), c.slack[i].Load()
		switch {
		case !st.Found:
			missing++
		case st.OnHand < 0 || st.Reserved < 0 || st.Reserved > st.OnHand:
			negative++
		case st.Reserved != 0:
			held++
		}
		if st.Found && (st.OnHand < want-slack || st.OnHand > want+slack) && len(bad) < 10 {
			bad = append(bad, fmt.Sprintf("%s/%s on_hand %d, books say %d (±%d)", st.Store, st.SKU, st.OnHand, want, slack))
		}
	}
	o.check("every item present", missing == 0, "%d of %d items missing", missing, len(states))
	o.check("never oversold", negative == 0, "%d items break 0 <= reserved <= on_hand", negative)
	o.check("expired holds released", held == 0, "%d items still hold units %s after the last hold expired", held, cfg.ReservationTTL+2500*time.Millisecond)
	o.check("stock equals the books", len(bad) == 0, "%s", summarize(bad, fmt.Sprintf("%d items: seed + successful changes == on_hand", len(states))))
	if err := o.checkLedger(ctx, cfg, name, t, states); err != nil {
		return nil, err
	}
	return o, nil
}

// bulk: a stock import of BulkLines adjustment lines over BulkItems items,
// sent in chunks of BulkChunk lines (over HTTP one POST /v1/adjustments per
// chunk); each line stands on its own. Latency is per chunk; throughput in
// lines.
func bulk(ctx context.Context, cfg Config, name, run string, t target) (*outcome, error) {
	ft, ok := t.(fullTarget)
	if !ok {
		return nil, fmt.Errorf("%s cannot run the bulk scenario", name)
	}
	store := func(i int) string { return fmt.Sprintf("b%s-s%02d", run, i%cfg.Stores) }
	seed := make([]SeedItem, cfg.BulkItems)
	index := map[[2]string]int{}
	for i := range seed {
		seed[i] = SeedItem{Store: store(i), SKU: "imp" + strconv.Itoa(i), OnHand: 0}
		index[[2]string{seed[i].Store, seed[i].SKU}] = i
	}
	if err := t.Seed(ctx, seed); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	warm(ctx, cfg, t)
	chunks := (cfg.BulkLines + cfg.BulkChunk - 1) / cfg.BulkChunk
	delta := make([]atomic.Int64, len(seed))
	slack := make([]atomic.Int64, len(seed))
	var next, lines, refused atomic.Int64
	l := cfg.load(name, t)
	l.maxOps = min(l.maxOps, int64(chunks))
	rec, elapsed := l.run(ctx, func(ctx context.Context, w int, rec *recorder) bool {
		ci := int(next.Add(1) - 1)
		if ci >= chunks {
			return false
		}
		rng := rand.New(rand.NewPCG(uint64(ci), 11))
		n := min(cfg.BulkChunk, cfg.BulkLines-ci*cfg.BulkChunk)
		ups := make([]Update, n)
		seen := map[int]bool{}
		for i := range ups {
			k := rng.IntN(len(seed))
			for seen[k] {
				k = rng.IntN(len(seed))
			}
			seen[k] = true
			d := 1 + rng.Int64N(100)
			if rng.IntN(10) == 0 {
				d = -1 - rng.Int64N(5)
			}
			ups[i] = Update{Store: seed[k].Store, SKU: seed[k].SKU, Delta: d}
		}
		// One lock order for every chunk: no deadlock between importers.
		sort.Slice(ups, func(i, j int) bool {
			if ups[i].Store != ups[j].Store {
				return ups[i].Store < ups[j].Store
			}
			return ups[i].SKU < ups[j].SKU
		})
		var res []error
		err := timed(rec, w, time.Now, func() error {
			var e error
			res, e = ft.BulkAdjust(ctx, ups)
			return e
		})
		_, unk := classify(err)
		for i, u := range ups {
			k := index[[2]string{u.Store, u.SKU}]
			var lerr error = err
			if err == nil {
				lerr = res[i]
			}
			kind, lunk := classify(lerr)
			switch {
			case kind == "":
				delta[k].Add(u.Delta)
				lines.Add(1)
			case kind == kindRefused:
				refused.Add(1)
			case lunk || unk:
				slack[k].Add(max(u.Delta, -u.Delta))
			}
		}
		return true
	})
	o := &outcome{rec: rec, elapsed: elapsed, units: lines.Load(), unit: "lines"}
	o.extra = map[string]any{"items": len(seed), "chunks": chunks, "lines_applied": lines.Load(), "lines_refused": refused.Load()}
	states, err := t.Items(ctx, seed)
	if err != nil {
		return nil, fmt.Errorf("read final state: %w", err)
	}
	var bad []string
	var missing, negative int
	for i, st := range states {
		want, sl := seed[i].OnHand+delta[i].Load(), slack[i].Load()
		if !st.Found {
			missing++
			continue
		}
		if st.OnHand < 0 || st.Reserved < 0 || st.Reserved > st.OnHand {
			negative++
		}
		if (st.OnHand < want-sl || st.OnHand > want+sl) && len(bad) < 10 {
			bad = append(bad, fmt.Sprintf("%s/%s on_hand %d, import says %d (±%d)", st.Store, st.SKU, st.OnHand, want, sl))
		}
	}
	o.check("every item present", missing == 0, "%d of %d items missing", missing, len(states))
	o.check("never negative", negative == 0, "%d items break 0 <= reserved <= on_hand", negative)
	o.check("stock equals the import", len(bad) == 0, "%s", summarize(bad, fmt.Sprintf("%d items: applied lines sum to on_hand", len(states))))
	if err := o.checkLedger(ctx, cfg, name, t, states); err != nil {
		return nil, err
	}
	return o, nil
}
