//lint:file-ignore ST1008 a retried call answers (err, unknown, items): the order in which the history records an outcome

package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
)

// trafficCfg shapes a run of concurrent client traffic.
type trafficCfg struct {
	// stores and skus: every store carries every SKU; all are recorded for
	// the linearizability check.
	stores, skus []string
	// initial on_hand of every item. Defaults to 60.
	initial int64
	// workers run at once; each runs at most ops logical operations and
	// stops at dur.
	workers, ops int
	dur          time.Duration
	// pace, when set, is a pause after each of a worker's operations: for
	// a test that needs the traffic to last its whole duration rather
	// than end as soon as ops are done.
	pace time.Duration
	// attempt bounds one try; giveUp bounds all tries of one logical
	// operation (then its outcome is unknown). Default 1s and 4s.
	attempt, giveUp time.Duration
	// noReserve leaves reservations out of the mix.
	noReserve bool
	// lossy: Redis may lose acknowledged writes (restarted empty): a hold
	// may be gone when its client commits it.
	lossy bool
}

// keyed is a keyed request and what its client learned of it.
type keyed struct {
	key   string
	kind  opKind
	items []string
	// outcome: "ok", "refused" or "unknown".
	outcome string
	// call and ret: when the client called and learned the outcome.
	call, ret int64
}

// traffic is a run of clients against an engine: retries with the same
// idempotency key until a definitive answer, records every operation on
// the items for porcupine and every keyed request for the exactly-once
// check.
type traffic struct {
	t   testing.TB
	e   *engine.Engine
	cfg trafficCfg
	rec *recorder

	mu         sync.Mutex
	keys       []keyed
	pending    []pendingOp
	unexpected []string
	// per item: units sold or committed with an acknowledgement, and units
	// whose outcome is unknown.
	soldAcked, soldUnknown map[string]int64

	ok, refused, unknown, retries, unavailable, reads atomic.Int64
	// slowest is the longest single failed attempt (ns): errors must come
	// quickly.
	slowestFail atomic.Int64
	// errKinds counts the transient errors seen, by kind.
	errKinds sync.Map
}

func itemName(store, sku string) string { return store + "/" + sku }

// newTraffic sets every item to its initial stock through e and returns the
// traffic, ready to run.
func newTraffic(t testing.TB, e *engine.Engine, cfg trafficCfg) *traffic {
	t.Helper()
	if cfg.initial == 0 {
		cfg.initial = 60
	}
	if cfg.attempt == 0 {
		cfg.attempt = time.Second
	}
	if cfg.giveUp == 0 {
		cfg.giveUp = 4 * time.Second
	}
	init := map[string]itemState{}
	for _, s := range cfg.stores {
		for _, k := range cfg.skus {
			r, err := e.Set(context.Background(), engine.SetRequest{Store: s, SKU: k, OnHand: cfg.initial, Reason: "initial count"}, engine.Op{})
			require.NoError(t, err)
			init[itemName(s, k)] = itemState{r.Item.OnHand, r.Item.Reserved, r.Item.Version}
		}
	}
	return &traffic{t: t, e: e, cfg: cfg, rec: newRecorder(init),
		soldAcked: map[string]int64{}, soldUnknown: map[string]int64{}}
}

// definitive reports whether err is an answer (nothing changed now) rather
// than a failure to get one.
func definitive(err error) bool {
	var (
		ise *engine.InsufficientStockError
		ve  *engine.ValidationError
	)
	return errors.As(err, &ise) || errors.Is(err, engine.ErrAlreadyApplied) || errors.Is(err, engine.ErrConflict) || errors.Is(err, engine.ErrNotFound) ||
		errors.Is(err, engine.ErrReservationNotHeld) || errors.Is(err, engine.ErrVersionMismatch) || errors.As(err, &ve)
}

func errKind(err error) string {
	switch {
	case errors.Is(err, engine.ErrPartitionNotReady):
		return "not_ready"
	case errors.Is(err, engine.ErrBackpressure):
		return "backpressure"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline"
	case engine.IsUnavailable(err):
		return "unavailable"
	}
	return "other"
}

// call runs fn with retries, the same request (and key) each time, until it
// answers, the give-up time passes or ctx ends. unknown is true when no
// answer came.
func (tr *traffic) call(ctx context.Context, fn func(ctx context.Context) error) (err error, unknown bool) {
	start := time.Now()
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, tr.cfg.attempt)
		t0 := time.Now()
		err = fn(actx)
		cancel()
		if err == nil || definitive(err) {
			return err, false
		}
		if d := int64(time.Since(t0)); d > tr.slowestFail.Load() {
			tr.slowestFail.Store(d)
		}
		kind := errKind(err)
		n, _ := tr.errKinds.LoadOrStore(kind, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		if errors.Is(err, engine.ErrIdempotencyMismatch) || errors.Is(err, engine.ErrCorrupt) || kind == "other" {
			tr.fail("unexpected error: %v", err)
			return err, true
		}
		if engine.IsUnavailable(err) {
			tr.unavailable.Add(1)
		}
		if time.Since(start) > tr.cfg.giveUp || ctx.Err() != nil {
			return err, true
		}
		tr.retries.Add(1)
		time.Sleep(time.Duration(10+rand.Intn(40)) * time.Millisecond) // client backoff
	}
}

func (tr *traffic) fail(format string, a ...any) {
	tr.mu.Lock()
	if len(tr.unexpected) < 20 {
		tr.unexpected = append(tr.unexpected, fmt.Sprintf(format, a...))
	}
	tr.mu.Unlock()
}

func stateOf(it engine.Item) itemState { return itemState{it.OnHand, it.Reserved, it.Version} }

// pendingOp is a keyed write whose client has not learned its outcome
// yet: resolve retries it, with the same key, once the traffic is over.
type pendingOp struct {
	w    int
	kind opKind
	item string
	n    int64
	key  string
	call int64
	redo func(ctx context.Context) (error, bool, []engine.Item)
}

// settle files the outcome of a keyed write, or keeps it for resolve when
// it is unknown.
func (tr *traffic) settle(w int, kind opKind, item string, n int64, key string, call int64,
	redo func(ctx context.Context) (error, bool, []engine.Item), err error, unknown bool, items []engine.Item) {
	if unknown {
		tr.mu.Lock()
		tr.pending = append(tr.pending, pendingOp{w, kind, item, n, key, call, redo})
		tr.mu.Unlock()
		return
	}
	tr.record(w, kind, item, n, key, call, err, unknown, items)
}

// resolve retries, with their keys, the writes whose outcome the clients
// never learned, as a client would once the service is back: the retry
// returns the first result if the write applied, or applies it now. The
// operation's interval runs from its first call to this answer. What stays
// unknown is recorded as such.
func (tr *traffic) resolve() {
	tr.mu.Lock()
	pend := tr.pending
	tr.pending = nil
	tr.mu.Unlock()
	giveUp := tr.cfg.giveUp
	tr.cfg.giveUp = 15 * time.Second
	defer func() { tr.cfg.giveUp = giveUp }()
	for _, p := range pend {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err, unknown, items := p.redo(ctx)
		cancel()
		tr.record(p.w, p.kind, p.item, p.n, p.key, p.call, err, unknown, items)
	}
	if len(pend) > 0 {
		tr.t.Logf("resolved %d writes of unknown outcome by retrying their keys", len(pend))
	}
}

// held is a reservation a worker holds: its id and quantity of one item.
type held struct {
	id, item, store string
	qty             int64
}

// run runs the workers and returns when all have stopped: after their ops,
// at dur, or when ctx ends.
func (tr *traffic) run(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, tr.cfg.dur)
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < tr.cfg.workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			tr.worker(ctx, w)
		}(w)
	}
	wg.Wait()
	tr.resolve()
}

func (tr *traffic) worker(ctx context.Context, w int) {
	rng := rand.New(rand.NewSource(time.Now().UnixNano() + int64(w)))
	var holds []held
	for i := 0; i < tr.cfg.ops && ctx.Err() == nil; i++ {
		if i > 0 && tr.cfg.pace > 0 {
			time.Sleep(tr.cfg.pace)
		}
		store := tr.cfg.stores[rng.Intn(len(tr.cfg.stores))]
		sku := tr.cfg.skus[rng.Intn(len(tr.cfg.skus))]
		item := itemName(store, sku)
		roll := rng.Intn(100)
		if tr.cfg.noReserve && roll >= 60 && roll < 85 {
			roll = 30
		}
		switch {
		case roll < 20:
			tr.read(ctx, w, store, sku)
		case roll < 50:
			tr.checkout(ctx, w, store, sku, int64(1+rng.Intn(3)))
		case roll < 60:
			d := int64(1 + rng.Intn(6))
			if rng.Intn(4) == 0 {
				d = -int64(1 + rng.Intn(3))
			}
			tr.adjust(ctx, w, store, sku, d)
		case roll < 62:
			tr.set(ctx, w, store, sku, int64(20+rng.Intn(40)))
		case roll < 75:
			if h, ok := tr.reserve(ctx, w, store, sku, int64(1+rng.Intn(3))); ok {
				holds = append(holds, h)
			}
		case roll < 85 && len(holds) > 0:
			h := holds[0]
			holds = holds[1:]
			tr.finish(ctx, w, h, rng.Intn(3) > 0)
		default:
			tr.checkout(ctx, w, store, sku, 1)
		}
		_ = item
	}
}

func (tr *traffic) newKey() string { return "k" + testsupport.RandomHex(10) }

func op(key string) engine.Op { return engine.Op{IdempotencyKey: key, Principal: "chaos"} }

func (tr *traffic) read(ctx context.Context, w int, store, sku string) {
	call := tr.rec.now()
	actx, cancel := context.WithTimeout(ctx, tr.cfg.attempt)
	defer cancel()
	it, err := tr.e.GetItem(actx, store, sku)
	if err != nil {
		if !engine.IsUnavailable(err) && !errors.Is(err, context.DeadlineExceeded) {
			tr.fail("read %s/%s: %v", store, sku, err)
		}
		return // a read that learned nothing constrains nothing
	}
	tr.reads.Add(1)
	if it.Reserved < 0 || it.Reserved > it.OnHand || it.Available != it.OnHand-it.Reserved {
		tr.fail("read %s/%s breaks 0 <= reserved <= on_hand: %+v", store, sku, it)
	}
	tr.rec.add(w, opInput{itemName(store, sku), opRead, 0}, call, opOutput{OK: true, HasState: true, State: stateOf(it)})
}

// record files the outcome of a keyed write on one item.
func (tr *traffic) record(w int, kind opKind, item string, n int64, key string, call int64, err error, unknown bool, items []engine.Item) opOutput {
	var out opOutput
	outcome := "ok"
	switch {
	case unknown:
		out.Unknown = true
		outcome = "unknown"
		tr.unknown.Add(1)
	case err != nil && errors.Is(err, engine.ErrAlreadyApplied):
		// Applied before Redis lost its data (the ledger has it), its
		// first response lost with it: nothing changes now.
		out.Noop = true
		tr.ok.Add(1)
	case err != nil && errors.Is(err, engine.ErrNotFound):
		out.Noop = true
		outcome = "refused"
		tr.refused.Add(1)
	case err != nil:
		out.Refused = true
		outcome = "refused"
		tr.refused.Add(1)
	default:
		out.OK = true
		tr.ok.Add(1)
		for _, it := range items {
			if itemName(it.Store, it.SKU) == item {
				out.HasState, out.State = true, stateOf(it)
			}
		}
	}
	tr.rec.add(w, opInput{item, kind, n}, call, out)
	tr.mu.Lock()
	tr.keys = append(tr.keys, keyed{key: key, kind: kind, items: []string{item}, outcome: outcome, call: call, ret: tr.rec.now()})
	if kind == opCheckout || kind == opCommit {
		switch outcome {
		case "ok":
			tr.soldAcked[item] += n
		case "unknown":
			tr.soldUnknown[item] += n
		}
	}
	tr.mu.Unlock()
	return out
}

func (tr *traffic) checkout(ctx context.Context, w int, store, sku string, n int64) {
	key, call := tr.newKey(), tr.rec.now()
	redo := func(ctx context.Context) (error, bool, []engine.Item) {
		var res engine.CheckoutResult
		err, unknown := tr.call(ctx, func(ctx context.Context) error {
			var err error
			res, err = tr.e.Checkout(ctx, engine.CheckoutRequest{Store: store, Lines: []engine.Line{{SKU: sku, Qty: n}}}, op(key))
			return err
		})
		return err, unknown, res.Items
	}
	err, unknown, items := redo(ctx)
	tr.settle(w, opCheckout, itemName(store, sku), n, key, call, redo, err, unknown, items)
}

func (tr *traffic) adjust(ctx context.Context, w int, store, sku string, d int64) {
	key, call := tr.newKey(), tr.rec.now()
	redo := func(ctx context.Context) (error, bool, []engine.Item) {
		var res engine.ItemResult
		err, unknown := tr.call(ctx, func(ctx context.Context) error {
			var err error
			res, err = tr.e.Adjust(ctx, engine.AdjustRequest{Store: store, SKU: sku, Delta: d, Reason: "restock"}, op(key))
			return err
		})
		if err == nil && !unknown {
			return nil, false, []engine.Item{res.Item}
		}
		return err, unknown, nil
	}
	err, unknown, items := redo(ctx)
	tr.settle(w, opAdjust, itemName(store, sku), d, key, call, redo, err, unknown, items)
}

func (tr *traffic) set(ctx context.Context, w int, store, sku string, n int64) {
	key, call := tr.newKey(), tr.rec.now()
	redo := func(ctx context.Context) (error, bool, []engine.Item) {
		var res engine.ItemResult
		err, unknown := tr.call(ctx, func(ctx context.Context) error {
			var err error
			res, err = tr.e.Set(ctx, engine.SetRequest{Store: store, SKU: sku, OnHand: n, Reason: "count"}, op(key))
			return err
		})
		if err == nil && !unknown {
			return nil, false, []engine.Item{res.Item}
		}
		return err, unknown, nil
	}
	err, unknown, items := redo(ctx)
	tr.settle(w, opSet, itemName(store, sku), n, key, call, redo, err, unknown, items)
}

func (tr *traffic) reserve(ctx context.Context, w int, store, sku string, n int64) (held, bool) {
	key, call := tr.newKey(), tr.rec.now()
	var res engine.ReservationResult
	redo := func(ctx context.Context) (error, bool, []engine.Item) {
		var res engine.ReservationResult
		err, unknown := tr.call(ctx, func(ctx context.Context) error {
			var err error
			res, err = tr.e.Reserve(ctx, engine.ReserveRequest{Store: store, Lines: []engine.Line{{SKU: sku, Qty: n}}, TTL: time.Hour}, op(key))
			return err
		})
		return err, unknown, res.Items
	}
	err, unknown := tr.call(ctx, func(ctx context.Context) error {
		var err error
		res, err = tr.e.Reserve(ctx, engine.ReserveRequest{Store: store, Lines: []engine.Line{{SKU: sku, Qty: n}}, TTL: time.Hour}, op(key))
		return err
	})
	tr.settle(w, opReserve, itemName(store, sku), n, key, call, redo, err, unknown, res.Items)
	if err != nil || unknown {
		return held{}, false
	}
	return held{id: res.Reservation.ID, item: itemName(store, sku), store: store, qty: n}, true
}

func (tr *traffic) finish(ctx context.Context, w int, h held, commit bool) {
	key, call := tr.newKey(), tr.rec.now()
	var res engine.ReservationResult
	kind := opRelease
	if commit {
		kind = opCommit
	}
	attempt := func(ctx context.Context) error {
		var err error
		if commit {
			res, err = tr.e.Commit(ctx, h.id, op(key))
		} else {
			res, err = tr.e.Release(ctx, h.id, op(key))
		}
		return err
	}
	check := func(err error, unknown bool) {
		if err != nil && !unknown && !errors.Is(err, engine.ErrAlreadyApplied) && !(tr.cfg.lossy && errors.Is(err, engine.ErrNotFound)) {
			// A hold of an hour cannot expire here: a refusal is a bug.
			tr.fail("%s of held reservation %s: %v", kind, h.id, err)
		}
	}
	redo := func(ctx context.Context) (error, bool, []engine.Item) {
		res = engine.ReservationResult{}
		err, unknown := tr.call(ctx, attempt)
		check(err, unknown)
		return err, unknown, res.Items
	}
	err, unknown := tr.call(ctx, attempt)
	check(err, unknown)
	tr.settle(w, kind, h.item, h.qty, key, call, redo, err, unknown, res.Items)
}

// summary is a one-line account of the run, for the log.
func (tr *traffic) summary() string {
	var kinds []string
	tr.errKinds.Range(func(k, v any) bool {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, v.(*atomic.Int64).Load()))
		return true
	})
	sort.Strings(kinds)
	return fmt.Sprintf("ok=%d refused=%d unknown=%d reads=%d retries=%d transient errors [%s] slowest failed attempt %s",
		tr.ok.Load(), tr.refused.Load(), tr.unknown.Load(), tr.reads.Load(), tr.retries.Load(),
		strings.Join(kinds, " "), time.Duration(tr.slowestFail.Load()))
}

// checkClients fails the test on unexpected client errors and requires the
// run did some work.
func (tr *traffic) checkClients() {
	tr.t.Helper()
	tr.t.Logf("traffic: %s", tr.summary())
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, u := range tr.unexpected {
		tr.t.Errorf("client: %s", u)
	}
	require.Positive(tr.t, tr.ok.Load(), "some operations succeeded")
}

// items lists every item of the traffic.
func (tr *traffic) items() []engine.ItemRef {
	var out []engine.ItemRef
	for _, s := range tr.cfg.stores {
		for _, k := range tr.cfg.skus {
			out = append(out, engine.ItemRef{Store: s, SKU: k})
		}
	}
	return out
}
