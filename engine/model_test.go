package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

// The model: a plain in-memory reference of the engine's semantics. The
// randomized test applies the same operations to both and compares outcomes
// and full state after every step.

type mItem struct {
	oh, rs, v, rp, mpc int64
}

type mRes struct {
	store, cust string
	lines       []engine.Line
	status      string
	x           time.Time
}

type mIdem struct {
	fp  string
	out string
}

type model struct {
	items map[string]*mItem // store/sku
	cu    map[string]int64  // store/sku/customer
	res   map[string]*mRes
	idem  map[string]mIdem
}

func newModel() *model {
	return &model{items: map[string]*mItem{}, cu: map[string]int64{}, res: map[string]*mRes{}, idem: map[string]mIdem{}}
}

func ikey(store, sku string) string { return store + "/" + sku }

// outcome classifies a result for comparison between model and engine.
func outcome(err error) string {
	var (
		ise *engine.InsufficientStockError
		ple *engine.PurchaseLimitError
		ve  *engine.ValidationError
		vm  *engine.VersionMismatchError
	)
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ise):
		s := "insufficient"
		for _, x := range ise.Shortages {
			s += fmt.Sprintf(" %s:%d/%d", x.SKU, x.Requested, x.Available)
		}
		return s
	case errors.As(err, &ple):
		return fmt.Sprintf("limit %s %d %d", ple.SKU, ple.Limit, ple.Already)
	case errors.As(err, &ve):
		return "invalid"
	case errors.As(err, &vm):
		return fmt.Sprintf("version %d", vm.Current)
	case errors.Is(err, engine.ErrNotFound):
		return "notfound"
	case errors.Is(err, engine.ErrCustomerRequired):
		return "customer"
	case errors.Is(err, engine.ErrReservationNotHeld):
		return "notheld"
	case errors.Is(err, engine.ErrIdempotencyMismatch):
		return "mismatch"
	case errors.Is(err, engine.ErrConflict):
		return "conflict"
	}
	return "other: " + err.Error()
}

type mOp struct {
	kind     string
	store    string
	sku      string
	n        int64
	ev       *int64
	lines    []engine.Line
	cust     string
	rid      string
	ttl      time.Duration
	mpc      *int64
	key      string
	advance  time.Duration
	fpString string
}

// apply runs op on the model and returns its outcome string.
func (m *model) apply(op mOp, now time.Time) string {
	if invalidOp(op) {
		return "invalid" // refused before the script: stores nothing
	}
	if op.key != "" {
		if rec, ok := m.idem[op.key]; ok {
			if rec.fp != op.fpString {
				return "mismatch"
			}
			return rec.out
		}
	}
	out := m.exec(op, now)
	if op.key != "" && out == "ok" {
		m.idem[op.key] = mIdem{fp: op.fpString, out: out}
	}
	return out
}

func invalidOp(op mOp) bool {
	if op.kind == "adjust" && op.n == 0 {
		return true
	}
	seen := map[string]bool{}
	for _, l := range op.lines {
		if l.Qty < 1 || seen[l.SKU] {
			return true
		}
		seen[l.SKU] = true
	}
	return false
}

func (m *model) check(store string, lines []engine.Line, cust string) string {
	seen := map[string]bool{}
	for _, l := range lines {
		if l.Qty < 1 || seen[l.SKU] {
			return "invalid"
		}
		seen[l.SKU] = true
	}
	for _, l := range lines {
		if m.items[ikey(store, l.SKU)] == nil {
			return "notfound"
		}
	}
	for _, l := range lines {
		it := m.items[ikey(store, l.SKU)]
		if it.mpc >= 0 {
			if cust == "" {
				return "customer"
			}
			already := m.cu[ikey(store, l.SKU)+"/"+cust]
			if already+l.Qty > it.mpc {
				return fmt.Sprintf("limit %s %d %d", l.SKU, it.mpc, already)
			}
		}
	}
	s := ""
	for _, l := range lines {
		it := m.items[ikey(store, l.SKU)]
		if l.Qty > it.oh-it.rs {
			s += fmt.Sprintf(" %s:%d/%d", l.SKU, l.Qty, it.oh-it.rs)
		}
	}
	if s != "" {
		return "insufficient" + s
	}
	return ""
}

func (m *model) usage(store, sku, cust string, n int64) {
	if cust == "" || m.items[ikey(store, sku)].mpc < 0 {
		return
	}
	k := ikey(store, sku) + "/" + cust
	m.cu[k] += n
	if m.cu[k] <= 0 {
		delete(m.cu, k)
	}
}

func (m *model) exec(op mOp, now time.Time) string {
	switch op.kind {
	case "set":
		it := m.items[ikey(op.store, op.sku)]
		if op.ev != nil {
			cur := int64(0)
			if it != nil {
				cur = it.v
			}
			if cur != *op.ev {
				return fmt.Sprintf("version %d", cur)
			}
		}
		if it == nil {
			it = &mItem{rp: -1, mpc: -1}
			if op.n >= 0 {
				m.items[ikey(op.store, op.sku)] = it
			}
		}
		if op.n < it.rs {
			return "conflict"
		}
		mpc := it.mpc
		if op.mpc != nil {
			mpc = *op.mpc
		}
		if it.v > 0 && op.n == it.oh && mpc == it.mpc {
			return "ok"
		}
		it.oh, it.mpc, it.v = op.n, mpc, it.v+1
		return "ok"
	case "adjust":
		it := m.items[ikey(op.store, op.sku)]
		if op.n == 0 {
			return "invalid"
		}
		if it == nil {
			return "notfound"
		}
		if op.ev != nil && *op.ev != it.v {
			return fmt.Sprintf("version %d", it.v)
		}
		if it.oh+op.n < it.rs {
			return fmt.Sprintf("insufficient %s:%d/%d", op.sku, -op.n, it.oh-it.rs)
		}
		it.oh, it.v = it.oh+op.n, it.v+1
		return "ok"
	case "checkout", "reserve":
		if r := m.check(op.store, op.lines, op.cust); r != "" {
			return r
		}
		for _, l := range op.lines {
			it := m.items[ikey(op.store, l.SKU)]
			if op.kind == "checkout" {
				it.oh -= l.Qty
			} else {
				it.rs += l.Qty
			}
			it.v++
			m.usage(op.store, l.SKU, op.cust, l.Qty)
		}
		if op.kind == "reserve" {
			m.res[op.rid] = &mRes{store: op.store, cust: op.cust, lines: op.lines, status: engine.StatusHeld, x: now.Add(op.ttl)}
		}
		return "ok"
	case "commit", "release":
		r := m.res[op.rid]
		if r == nil {
			return "notfound"
		}
		if op.kind == "commit" {
			switch {
			case r.status == engine.StatusCommitted:
				return "ok"
			case r.status != engine.StatusHeld || !now.Before(r.x):
				return "notheld"
			}
		} else {
			switch r.status {
			case engine.StatusReleased, engine.StatusExpired:
				return "ok"
			case engine.StatusCommitted:
				return "notheld"
			}
		}
		m.finish(r, op.kind)
		return "ok"
	case "expire":
		for _, r := range m.res {
			if r.status == engine.StatusHeld && !now.Before(r.x) {
				m.finish(r, "expire")
			}
		}
		return "ok"
	}
	panic(op.kind)
}

func (m *model) finish(r *mRes, kind string) {
	for _, l := range r.lines {
		it := m.items[ikey(r.store, l.SKU)]
		if kind == "commit" {
			it.oh -= l.Qty
		} else {
			m.usage(r.store, l.SKU, r.cust, -l.Qty)
		}
		it.rs -= l.Qty
		it.v++
	}
	r.status = map[string]string{"commit": engine.StatusCommitted, "release": engine.StatusReleased, "expire": engine.StatusExpired}[kind]
}

func TestModelRandomized(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		for seed := int64(1); seed <= 4; seed++ {
			t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
				runModel(t, b, seed, 250)
			})
		}
	})
}

func runModel(t *testing.T, b backend, seed int64, steps int) {
	ctx := context.Background()
	clock := newFakeClock()
	e := b.make(t, engine.Config{Clock: clock.Now})
	m := newModel()
	rng := rand.New(rand.NewSource(seed))
	stores := []string{"s1", "s2"}
	skus := []string{"a", "b", "c"}
	custs := []string{"", "ann", "bob"}
	keys := []string{"k1", "k2", "k3", "k4"}
	var rids []string
	randLines := func() []engine.Line {
		n := 1 + rng.Intn(3)
		ls := make([]engine.Line, 0, n)
		for i := 0; i < n; i++ {
			q := int64(1 + rng.Intn(4))
			if rng.Intn(20) == 0 {
				q = 0
			}
			ls = append(ls, engine.Line{SKU: skus[rng.Intn(len(skus))], Qty: q})
		}
		return ls
	}
	for step := 0; step < steps; step++ {
		op := mOp{store: stores[rng.Intn(len(stores))], sku: skus[rng.Intn(len(skus))], cust: custs[rng.Intn(len(custs))]}
		if rng.Intn(3) == 0 {
			op.key = keys[rng.Intn(len(keys))]
		}
		switch k := rng.Intn(10); {
		case k == 0:
			op.kind = "set"
			op.n = int64(rng.Intn(12))
			if rng.Intn(4) == 0 {
				v := int64(rng.Intn(4))
				op.ev = &v
			}
			if rng.Intn(3) == 0 {
				mpc := int64(rng.Intn(4)) - 1
				op.mpc = &mpc
			}
		case k == 1:
			op.kind = "adjust"
			op.n = int64(rng.Intn(9) - 4)
			if rng.Intn(5) == 0 {
				v := int64(1 + rng.Intn(6))
				op.ev = &v
			}
		case k <= 4:
			op.kind = "checkout"
			op.lines = randLines()
		case k <= 6:
			op.kind = "reserve"
			op.lines = randLines()
			op.ttl = time.Duration(1+rng.Intn(5)) * time.Second
		case k <= 8:
			op.kind = []string{"commit", "release"}[rng.Intn(2)]
			if len(rids) > 0 && rng.Intn(8) != 0 {
				op.rid = rids[rng.Intn(len(rids))]
			} else {
				op.rid = fmt.Sprintf("%d-%032x", e.Partition(op.store), rng.Intn(1000))
			}
		default:
			op.kind = "expire"
			op.key = ""
			op.advance = time.Duration(rng.Intn(3000)) * time.Millisecond
		}
		if op.key != "" {
			// the engine's idempotency records live in the partition of the
			// store or reservation
			part := e.Partition(op.store)
			if op.rid != "" {
				part, _ = e.ReservationPartition(op.rid)
			}
			op.key = fmt.Sprintf("%d/%s", part, op.key)
		}
		op.fpString = fmt.Sprintf("%s %s %s %d %v %v %s %s %v %v", op.kind, op.store, op.sku, op.n, ptr(op.ev), op.lines, op.cust, op.rid, op.ttl, ptr(op.mpc))
		eop := engine.Op{IdempotencyKey: op.key, Principal: "p", Fingerprint: op.fpString}
		if op.key != "" {
			_, eop.IdempotencyKey, _ = strings.Cut(op.key, "/")
		}

		var err error
		switch op.kind {
		case "set":
			req := engine.SetRequest{Store: op.store, SKU: op.sku, OnHand: op.n, ExpectVersion: op.ev}
			if op.mpc != nil {
				if *op.mpc < 0 {
					req.ClearMaxPerCustomer = true
				} else {
					req.MaxPerCustomer = op.mpc
				}
			}
			_, err = e.Set(ctx, req, eop)
		case "adjust":
			_, err = e.Adjust(ctx, engine.AdjustRequest{Store: op.store, SKU: op.sku, Delta: op.n, ExpectVersion: op.ev}, eop)
		case "checkout":
			_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: op.store, Lines: op.lines, Customer: op.cust}, eop)
		case "reserve":
			var r engine.ReservationResult
			r, err = e.Reserve(ctx, engine.ReserveRequest{Store: op.store, Lines: op.lines, Customer: op.cust, TTL: op.ttl}, eop)
			if err == nil {
				op.rid = r.Reservation.ID
				if !r.Replayed {
					rids = append(rids, op.rid)
				}
			}
		case "commit":
			_, err = e.Commit(ctx, op.rid, eop)
		case "release":
			_, err = e.Release(ctx, op.rid, eop)
		case "expire":
			clock.Advance(op.advance)
			for p := 0; p < e.Partitions(); p++ {
				_, err = e.ExpireDue(ctx, p, 1000)
				require.NoError(t, err)
			}
		}
		want := m.apply(op, clock.Now())
		require.Equal(t, want, outcome(err), "step %d: %s", step, op.fpString)
		compareState(t, e, m, stores, skus, step)
	}
	for _, s := range stores {
		for _, k := range skus {
			if m.items[ikey(s, k)] != nil {
				checkItemLedger(t, e, s, k)
			}
		}
	}
}

func ptr(p *int64) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

func compareState(t *testing.T, e *engine.Engine, m *model, stores, skus []string, step int) {
	t.Helper()
	ctx := context.Background()
	for _, s := range stores {
		for _, k := range skus {
			want := m.items[ikey(s, k)]
			got, err := e.GetItem(ctx, s, k)
			if want == nil {
				require.ErrorIs(t, err, engine.ErrNotFound, "step %d %s/%s", step, s, k)
				continue
			}
			require.NoError(t, err)
			mpc := int64(-1)
			if got.MaxPerCustomer != nil {
				mpc = *got.MaxPerCustomer
			}
			require.Equal(t, [4]int64{want.oh, want.rs, want.v, want.mpc}, [4]int64{got.OnHand, got.Reserved, got.Version, mpc}, "step %d %s/%s", step, s, k)
		}
	}
	ids := make([]string, 0, len(m.res))
	for id := range m.res {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		r, err := e.GetReservation(ctx, id)
		require.NoError(t, err)
		require.Equal(t, m.res[id].status, r.Status, "step %d reservation %s", step, id)
	}
}
