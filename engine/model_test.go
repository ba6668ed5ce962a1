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
//
// Purchase limits: a customer's usage of an item counts the units they held
// or bought while the item had a limit. A sale or hold counts when the item
// has a limit at that moment; a hold remembers per line what it counted, and
// a release or expiry gives back exactly that; a commit keeps it counted.
// Setting or clearing a limit leaves the counts as they are.
//
// States (docs/design.md §2.1): cm, dm, qc, dp are held like reserved; a
// sale or hold takes at most available (on_hand less everything held, less
// the safety stock ss unless the sale is at the till).

type mItem struct {
	oh, rs, v, rp, mpc int64
	cm, dm, qc, dp     int64
	ss                 int64 // -1: unset
}

func (it *mItem) held() int64 { return it.rs + it.cm + it.dm + it.qc + it.dp }

func (it *mItem) avail(pos bool) int64 {
	a := it.oh - it.held()
	if !pos && it.ss > 0 {
		a -= it.ss
	}
	return max(a, 0)
}

// state returns the field of a state (nil for available).
func (it *mItem) state(s string) *int64 {
	switch s {
	case "committed":
		return &it.cm
	case "damaged":
		return &it.dm
	case "quality_control":
		return &it.qc
	case "display":
		return &it.dp
	}
	return nil
}

type mRes struct {
	store, cust string
	lines       []engine.Line
	// counted holds, per line, the units counted against the customer's
	// purchase limit.
	counted []int64
	status  string
	x       time.Time
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
	// probe marks a checkout sized at the edge of the customer's allowance.
	probe bool
	// pos: a till sale; later: fulfilment later (checkout, commit); from,
	// to: a move's states; state: an adjust's; ss: a set's safety stock
	// (-1 clears).
	pos, later bool
	from, to   string
	state      string
	ss         *int64
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
	if op.kind == "adjust" && (op.n == 0 || (op.state != "" && !engine.ValidState(op.state))) {
		return true
	}
	if op.kind == "move" {
		if !engine.ValidState(op.from) || !engine.ValidState(op.to) || op.from == op.to || op.n < 1 {
			return true
		}
		if (op.from == "committed" || op.to == "committed") && op.from != "available" && op.to != "available" {
			return true
		}
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

func (m *model) check(store string, lines []engine.Line, cust string, pos bool) string {
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
		if a := it.avail(pos); l.Qty > a {
			s += fmt.Sprintf(" %s:%d/%d", l.SKU, l.Qty, a)
		}
	}
	if s != "" {
		return "insufficient" + s
	}
	return ""
}

// usage adds n (negative: gives back) to a customer's usage of an item.
func (m *model) usage(store, sku, cust string, n int64) {
	if cust == "" || n == 0 {
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
			it = &mItem{rp: -1, mpc: -1, ss: -1}
			if op.n >= 0 {
				m.items[ikey(op.store, op.sku)] = it
			}
		}
		if op.n < it.held() {
			return "conflict"
		}
		mpc, ss := it.mpc, it.ss
		if op.mpc != nil {
			mpc = *op.mpc
		}
		if op.ss != nil {
			ss = *op.ss
		}
		if it.v > 0 && op.n == it.oh && mpc == it.mpc && ss == it.ss {
			return "ok"
		}
		it.oh, it.mpc, it.ss, it.v = op.n, mpc, ss, it.v+1
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
		if st := it.state(op.state); st != nil {
			if *st+op.n < 0 {
				return fmt.Sprintf("insufficient %s:%d/%d", op.sku, -op.n, *st)
			}
			*st += op.n
		} else if it.oh+op.n < it.held() {
			return fmt.Sprintf("insufficient %s:%d/%d", op.sku, -op.n, it.oh-it.held())
		}
		it.oh, it.v = it.oh+op.n, it.v+1
		return "ok"
	case "move":
		it := m.items[ikey(op.store, op.sku)]
		if it == nil {
			return "notfound"
		}
		from, to := it.state(op.from), it.state(op.to)
		have := it.avail(false)
		if from != nil {
			have = *from
		}
		if have < op.n {
			return fmt.Sprintf("insufficient %s:%d/%d", op.sku, op.n, have)
		}
		if from != nil {
			*from -= op.n
		}
		if to != nil {
			*to += op.n
		}
		it.v++
		return "ok"
	case "fulfil":
		for _, l := range op.lines {
			if m.items[ikey(op.store, l.SKU)] == nil {
				return "notfound"
			}
		}
		s := ""
		for _, l := range op.lines {
			if it := m.items[ikey(op.store, l.SKU)]; l.Qty > it.cm {
				s += fmt.Sprintf(" %s:%d/%d", l.SKU, l.Qty, it.cm)
			}
		}
		if s != "" {
			return "insufficient" + s
		}
		for _, l := range op.lines {
			it := m.items[ikey(op.store, l.SKU)]
			it.oh, it.cm, it.v = it.oh-l.Qty, it.cm-l.Qty, it.v+1
		}
		return "ok"
	case "checkout", "reserve":
		if r := m.check(op.store, op.lines, op.cust, op.pos && op.kind == "checkout"); r != "" {
			return r
		}
		counted := make([]int64, len(op.lines))
		for i, l := range op.lines {
			it := m.items[ikey(op.store, l.SKU)]
			switch {
			case op.kind == "checkout" && op.later:
				it.cm += l.Qty
			case op.kind == "checkout":
				it.oh -= l.Qty
			default:
				it.rs += l.Qty
			}
			it.v++
			if it.mpc >= 0 {
				counted[i] = l.Qty
				m.usage(op.store, l.SKU, op.cust, l.Qty)
			}
		}
		if op.kind == "reserve" {
			m.res[op.rid] = &mRes{store: op.store, cust: op.cust, lines: op.lines, counted: counted, status: engine.StatusHeld, x: now.Add(op.ttl)}
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
		kind := op.kind
		if kind == "commit" && op.later {
			kind = "commit-later"
		}
		m.finish(r, kind)
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
	for i, l := range r.lines {
		it := m.items[ikey(r.store, l.SKU)]
		switch kind {
		case "commit":
			it.oh -= l.Qty
		case "commit-later":
			it.cm += l.Qty
		default:
			m.usage(r.store, l.SKU, r.cust, -r.counted[i])
		}
		it.rs -= l.Qty
		it.v++
	}
	r.status = map[string]string{"commit": engine.StatusCommitted, "commit-later": engine.StatusCommitted,
		"release": engine.StatusReleased, "expire": engine.StatusExpired}[kind]
}

// modelMix is what a randomized run draws from: ids, and the weight of each
// kind of step.
type modelMix struct {
	stores, skus, custs []string
	// weights of set, adjust, checkout, reserve, commit or release, expire,
	// set or clear the purchase limit, a purchase at the edge of the
	// customer's allowance, and the states' steps: a move, a later sale
	// (checkout or commit), a fulfilment, an adjust in a state, a safety
	// stock change, a till sale
	weights [14]int
	// distinct makes every order name distinct SKUs, and heldFirst makes
	// most commits and releases name a reservation that is held.
	distinct, heldFirst bool
	// stock bounds the on_hand a set picks, limit the purchase limit a
	// limit step sets (both exclusive); one step in keyed carries an
	// idempotency key.
	stock, limit, keyed int
}

// mixAll exercises everything at once.
var mixAll = modelMix{
	stores: []string{"s1", "s2"}, skus: []string{"a", "b", "c"}, custs: []string{"", "ann", "bob"},
	weights: [14]int{1, 1, 3, 2, 2, 1, 1, 1}, stock: 12, limit: 7, keyed: 3,
}

// mixLimits crowds purchase limits being set and cleared among holds and
// sales of a few customers, with their commits, releases and expiries.
var mixLimits = modelMix{
	stores: []string{"s1"}, skus: []string{"a", "b"}, custs: []string{"ann", "bob", "cy", "dee", "eve", "flo"},
	weights: [14]int{1, 0, 2, 4, 4, 1, 3, 3}, distinct: true, heldFirst: true, stock: 40, limit: 10, keyed: 10,
}

// mixStates crowds the states of docs/design.md §2.1: moves, later sales
// and commits, fulfilments, adjusts in a state, safety stock changes and
// till sales among the other operations.
var mixStates = modelMix{
	stores: []string{"s1"}, skus: []string{"a", "b", "c"}, custs: []string{"", "ann", "bob"},
	weights: [14]int{1, 1, 2, 2, 2, 1, 1, 0, 4, 3, 3, 2, 1, 2}, heldFirst: true, stock: 20, limit: 12, keyed: 4,
}

// TestModelStates: random moves, later sales, fulfilments, state adjusts and
// safety stock changes among the existing operations, the state compared
// after every step.
func TestModelStates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		for seed := int64(1); seed <= 4; seed++ {
			t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
				runModel(t, b, mixStates, seed, 300)
			})
		}
	})
}

func TestModelRandomized(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		for seed := int64(1); seed <= 4; seed++ {
			t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
				runModel(t, b, mixAll, seed, 250)
			})
		}
	})
}

// TestModelPurchaseLimits: the model's per-customer usage against the
// engine's, with limits set and cleared while holds and sales count or not.
func TestModelPurchaseLimits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		for seed := int64(1); seed <= 4; seed++ {
			t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
				runModel(t, b, mixLimits, seed, 300)
			})
		}
	})
}

func runModel(t *testing.T, b backend, mix modelMix, seed int64, steps int) {
	ctx := context.Background()
	clock := newFakeClock()
	e := b.make(t, engine.Config{Clock: clock.Now})
	m := newModel()
	rng := rand.New(rand.NewSource(seed))
	stores, skus, custs := mix.stores, mix.skus, mix.custs
	keys := []string{"k1", "k2", "k3", "k4"}
	total := 0
	for _, w := range mix.weights {
		total += w
	}
	var rids []string
	randLines := func() []engine.Line {
		n := 1 + rng.Intn(3)
		if mix.distinct {
			n = 1 + rng.Intn(len(skus))
		}
		ls := make([]engine.Line, 0, n)
		perm := rng.Perm(len(skus))
		for i := 0; i < n; i++ {
			q := int64(1 + rng.Intn(4))
			if rng.Intn(20) == 0 {
				q = 0
			}
			sku := skus[rng.Intn(len(skus))]
			if mix.distinct {
				sku = skus[perm[i]]
			}
			ls = append(ls, engine.Line{SKU: sku, Qty: q})
		}
		return ls
	}
	for step := 0; step < steps; step++ {
		op := mOp{store: stores[rng.Intn(len(stores))], sku: skus[rng.Intn(len(skus))], cust: custs[rng.Intn(len(custs))]}
		if rng.Intn(mix.keyed) == 0 {
			op.key = keys[rng.Intn(len(keys))]
		}
		k, pick := rng.Intn(total), 0
		for pick < len(mix.weights)-1 && k >= mix.weights[pick] {
			k -= mix.weights[pick]
			pick++
		}
		switch pick {
		case 0:
			op.kind = "set"
			op.n = int64(rng.Intn(mix.stock))
			if rng.Intn(4) == 0 {
				v := int64(rng.Intn(4))
				op.ev = &v
			}
			if rng.Intn(3) == 0 {
				mpc := int64(rng.Intn(4)) - 1
				op.mpc = &mpc
			}
		case 1:
			op.kind = "adjust"
			op.n = int64(rng.Intn(9) - 4)
			if rng.Intn(5) == 0 {
				v := int64(1 + rng.Intn(6))
				op.ev = &v
			}
		case 2:
			op.kind = "checkout"
			op.lines = randLines()
		case 3:
			op.kind = "reserve"
			op.lines = randLines()
			op.ttl = time.Duration(1+rng.Intn(5)) * time.Second
		case 4:
			op.kind = []string{"commit", "release"}[rng.Intn(2)]
			var held []string
			if mix.heldFirst && rng.Intn(4) != 0 {
				for _, id := range rids {
					if m.res[id].status == engine.StatusHeld {
						held = append(held, id)
					}
				}
			}
			if len(held) > 0 {
				op.rid = held[rng.Intn(len(held))]
			} else if len(rids) > 0 && rng.Intn(8) != 0 {
				op.rid = rids[rng.Intn(len(rids))]
			} else {
				op.rid = fmt.Sprintf("%d-%032x", e.Partition(op.store), rng.Intn(1000))
			}
		case 5:
			op.kind = "expire"
			op.key = ""
			op.advance = time.Duration(rng.Intn(3000)) * time.Millisecond
		case 6:
			// set or clear the purchase limit, on_hand unchanged, while
			// holds and sales of the item may already count or not
			op.kind = "set"
			op.n = int64(rng.Intn(mix.stock))
			if it := m.items[ikey(op.store, op.sku)]; it != nil {
				op.n = it.oh
			}
			mpc := int64(-1)
			if rng.Intn(3) != 0 {
				mpc = int64(rng.Intn(mix.limit))
			}
			op.mpc = &mpc
		case 8:
			op.kind = "move"
			states := []string{"available", "committed", "damaged", "quality_control", "display"}
			op.from, op.to = states[rng.Intn(len(states))], states[rng.Intn(len(states))]
			if rng.Intn(10) == 0 {
				op.to = "lost"
			}
			op.n = int64(rng.Intn(5))
		case 9:
			// a later sale, or a reservation committed for later delivery
			if rng.Intn(2) == 0 {
				op.kind = "checkout"
				op.lines = randLines()
			} else {
				op.kind = "commit"
				for _, id := range rids {
					if m.res[id].status == engine.StatusHeld {
						op.rid = id
					}
				}
				if op.rid == "" {
					op.kind = "checkout"
					op.lines = randLines()
				}
			}
			op.later = true
		case 10:
			op.kind = "fulfil"
			op.lines = randLines()
		case 11:
			op.kind = "adjust"
			op.state = []string{"", "available", "committed", "damaged", "quality_control", "display", "gone"}[rng.Intn(7)]
			op.n = int64(rng.Intn(7) - 3)
		case 12:
			op.kind = "set"
			op.n = int64(rng.Intn(mix.stock))
			if it := m.items[ikey(op.store, op.sku)]; it != nil && rng.Intn(2) == 0 {
				op.n = it.oh
			}
			ss := int64(rng.Intn(4)) - 1
			op.ss = &ss
		case 13:
			op.kind = "checkout"
			op.lines = randLines()
			op.pos = true
		default:
			// a purchase at the edge of the customer's allowance: one unit
			// past it (refused for the limit) or exactly what is left
			op.kind = "checkout"
			op.key = ""
			op.lines = randLines()[:1]
			for op.cust == "" {
				op.cust = custs[rng.Intn(len(custs))]
			}
			if it := m.items[ikey(op.store, op.lines[0].SKU)]; it != nil && it.mpc >= 0 {
				op.probe = true
				left := it.mpc - m.cu[ikey(op.store, op.lines[0].SKU)+"/"+op.cust]
				op.lines[0].Qty = left + int64(rng.Intn(2))
				if op.lines[0].Qty < 1 {
					op.lines[0].Qty = 1
				}
			}
		}
		op.fpString = fmt.Sprintf("%s %s %s %d %v %v %s %s %v %v %v %v %s %s %s %v", op.kind, op.store, op.sku, op.n, ptr(op.ev), op.lines, op.cust, op.rid, op.ttl, ptr(op.mpc),
			op.pos, op.later, op.from, op.to, op.state, ptr(op.ss))
		// a client key is the principal's, whichever store or reservation
		// its request names
		eop := engine.Op{IdempotencyKey: op.key, Principal: "p", Fingerprint: op.fpString}

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
			if op.ss != nil {
				if *op.ss < 0 {
					req.ClearSafetyStock = true
				} else {
					req.SafetyStock = op.ss
				}
			}
			_, err = e.Set(ctx, req, eop)
		case "adjust":
			_, err = e.Adjust(ctx, engine.AdjustRequest{Store: op.store, SKU: op.sku, Delta: op.n, State: op.state, ExpectVersion: op.ev}, eop)
		case "move":
			_, err = e.Move(ctx, engine.MoveRequest{Store: op.store, SKU: op.sku, From: op.from, To: op.to, Qty: op.n}, eop)
		case "fulfil":
			_, err = e.Fulfil(ctx, engine.FulfilRequest{Store: op.store, Lines: op.lines}, eop)
		case "checkout":
			req := engine.CheckoutRequest{Store: op.store, Lines: op.lines, Customer: op.cust}
			if op.pos {
				req.Channel = engine.ChannelPOS
			}
			if op.later {
				req.Fulfilment = engine.FulfilmentLater
			}
			_, err = e.Checkout(ctx, req, eop)
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
			if op.later {
				_, err = e.CommitFulfilment(ctx, op.rid, engine.FulfilmentLater, eop)
			} else {
				_, err = e.Commit(ctx, op.rid, eop)
			}
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
		if op.probe {
			var ple *engine.PurchaseLimitError
			switch {
			case strings.HasPrefix(want, "limit "):
				require.ErrorAs(t, err, &ple, "step %d: the model refuses %s for the limit", step, op.fpString)
			case want == "ok":
				require.NoError(t, err, "step %d: the model accepts %s", step, op.fpString)
			}
		}
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
			ss := int64(-1)
			if got.SafetyStock != nil {
				ss = *got.SafetyStock
			}
			require.Equal(t, [5]int64{want.cm, want.dm, want.qc, want.dp, want.ss},
				[5]int64{got.Committed, got.Damaged, got.QualityControl, got.Display, ss}, "step %d %s/%s states", step, s, k)
			require.Equal(t, want.avail(false), got.Available, "step %d %s/%s available", step, s, k)
			requireInvariant(t, got)
			wantCU := map[string]string{}
			for key, n := range m.cu {
				if c, ok := strings.CutPrefix(key, ikey(s, k)+"/"); ok {
					wantCU[c] = fmt.Sprint(n)
				}
			}
			gotCU, err := e.Client().HGetAll(ctx, e.KeyBase(e.Partition(s))+"cu:"+s+":"+k).Result()
			require.NoError(t, err)
			require.Equal(t, wantCU, gotCU, "step %d %s/%s customer units", step, s, k)
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
