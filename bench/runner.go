package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"time"
)

// runner sends a rehearsal's iterations to one server and tallies them.
type runner struct {
	p     Plan
	c     *httpClient
	t     *tally
	start time.Time
	seed  uint64
	// stores are the run's store names; cum the mix's cumulative weights.
	stores []string
	cum    []float64
	// open are the run's transfers nobody received or cancelled yet.
	tmu  sync.Mutex
	open []openTransfer
}

// openTransfer is a transfer the run created: qty units of SKU k from
// store from to store to.
type openTransfer struct {
	id       string
	from, to int
	k        int
	qty      int64
}

func newRunner(p Plan, run string, c *httpClient) *runner {
	h := fnv.New64a()
	h.Write([]byte(run))
	r := &runner{p: p, c: c, t: newTally(len(p.Stages)), seed: h.Sum64(), stores: rehearsalStores(p, run)}
	var sum float64
	for _, w := range p.Mix.weights() {
		sum += w
		r.cum = append(r.cum, sum)
	}
	return r
}

// rehearsalStores names a run's stores, so a run never touches anyone
// else's stock.
func rehearsalStores(p Plan, run string) []string {
	out := make([]string, p.Catalog.Stores)
	for i := range out {
		out[i] = fmt.Sprintf("r%s-s%02d", run, i)
	}
	return out
}

func skuName(k int) string { return "sku" + strconv.Itoa(k) }

// rehearsalSeed is the items a plan's catalog creates.
func rehearsalSeed(p Plan, run string) []SeedItem {
	var out []SeedItem
	for _, s := range rehearsalStores(p, run) {
		for k := 0; k < p.Catalog.SKUs; k++ {
			oh := p.Catalog.OnHand
			if k == 0 && p.Catalog.HotOnHand > 0 {
				oh = p.Catalog.HotOnHand
			}
			out = append(out, SeedItem{Store: s, SKU: skuName(k), OnHand: oh})
		}
	}
	return out
}

func (r *runner) index(store, sku int) int { return store*r.p.Catalog.SKUs + sku }

// pick draws n distinct SKUs by the plan's hot spec, sorted (one lock order
// for every multi-line request).
func (r *runner) pick(rng *rand.Rand, n int) []int {
	var z *rand.Zipf
	if r.p.Hot.Zipf > 1 {
		z = rand.NewZipf(rng, r.p.Hot.Zipf, 1, uint64(r.p.Catalog.SKUs-1))
	}
	seen := map[int]bool{}
	out := make([]int, 0, n)
	for len(out) < n {
		var k int
		switch {
		case z != nil:
			k = int(z.Uint64())
		case r.p.Hot.Share > 0 && rng.Float64() < r.p.Hot.Share:
			k = 0
		default:
			k = rng.IntN(r.p.Catalog.SKUs)
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	sort.Ints(out)
	return out
}

// iteration runs iteration n, due at due in stage: one draw of the mix.
func (r *runner) iteration(ctx context.Context, n int64, due time.Time, stage int) {
	rng := rand.New(rand.NewPCG(uint64(n), r.seed))
	x := rng.Float64() * r.cum[len(r.cum)-1]
	op := sort.SearchFloat64s(r.cum, x)
	for op < len(r.cum)-1 && r.cum[op] <= x {
		op++
	}
	s := rng.IntN(len(r.stores))
	customer := ""
	if r.p.Customers.Count > 0 {
		customer = "c" + strconv.Itoa(rng.IntN(r.p.Customers.Count))
	}
	defer func() { r.t.finished(time.Since(r.start)) }()
	switch mixOps[op] {
	case OpCheckout:
		r.checkout(ctx, rng, due, stage, s, customer)
	case OpReserve:
		r.reserve(ctx, rng, due, stage, s, customer)
	case OpRead:
		k := r.pick(rng, 1)[0]
		r.send(ctx, OpRead, due, stage, http.MethodGet, itemPath(r.stores[s], skuName(k)), nil)
	case OpAvailability:
		k := r.pick(rng, 1)[0]
		r.send(ctx, OpAvailability, due, stage, http.MethodGet, "/v1/items/"+url.PathEscape(skuName(k)), nil)
	case OpAdjust:
		k := r.pick(rng, 1)[0]
		delta := 1 + rng.Int64N(10)
		_, err := r.send(ctx, OpAdjust, due, stage, http.MethodPost, itemPath(r.stores[s], skuName(k))+"/adjust",
			map[string]any{"delta": delta, "reason": "restock"})
		r.t.note(err, []int{r.index(s, k)}, []int64{delta})
	case OpBulk:
		r.bulk(ctx, rng, due, stage)
	case OpTransfer:
		r.transfer(ctx, rng, due, stage, s)
	case OpReceive, OpCancel:
		t, ok := r.takeOpen(rng)
		if !ok {
			r.transfer(ctx, rng, due, stage, s)
			return
		}
		r.finishTransfer(ctx, mixOps[op], due, stage, t)
	}
}

// transfer creates a transfer of 1..3 units of one SKU from store s to the
// next store, and keeps it for a later receive or cancel.
func (r *runner) transfer(ctx context.Context, rng *rand.Rand, due time.Time, stage, s int) {
	to := (s + 1) % len(r.stores)
	k := r.pick(rng, 1)[0]
	q := 1 + rng.Int64N(3)
	resp, err := r.send(ctx, OpTransfer, due, stage, http.MethodPost, "/v1/transfers", map[string]any{
		"from": r.stores[s], "to": r.stores[to], "lines": []Line{{SKU: skuName(k), Qty: q}}, "reference": "rehearsal"})
	r.t.note(err, []int{r.index(s, k)}, []int64{-q})
	if err != nil {
		return
	}
	var res struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(resp.body, &res) != nil || res.ID == "" {
		return
	}
	r.tmu.Lock()
	r.open = append(r.open, openTransfer{id: res.ID, from: s, to: to, k: k, qty: q})
	r.tmu.Unlock()
}

// takeOpen takes one of the run's open transfers at random.
func (r *runner) takeOpen(rng *rand.Rand) (openTransfer, bool) {
	r.tmu.Lock()
	defer r.tmu.Unlock()
	if len(r.open) == 0 {
		return openTransfer{}, false
	}
	i := rng.IntN(len(r.open))
	t := r.open[i]
	r.open[i] = r.open[len(r.open)-1]
	r.open = r.open[:len(r.open)-1]
	return t, true
}

// finishTransfer receives all of t's units at its destination or cancels
// it (they go back to its source).
func (r *runner) finishTransfer(ctx context.Context, op string, due time.Time, stage int, t openTransfer) {
	path := "/v1/transfers/" + url.PathEscape(t.id)
	if op == OpReceive {
		_, err := r.send(ctx, OpReceive, due, stage, http.MethodPost, path+"/receive", map[string]any{
			"lines": []map[string]any{{"sku": skuName(t.k), "received": t.qty}}})
		r.t.note(err, []int{r.index(t.to, t.k)}, []int64{t.qty})
		return
	}
	_, err := r.send(ctx, OpCancel, due, stage, http.MethodPost, path+"/cancel", nil)
	r.t.note(err, []int{r.index(t.from, t.k)}, []int64{t.qty})
}

// lines draws a checkout's or reservation's lines, one unit each.
func (r *runner) lines(rng *rand.Rand, s int) ([]Line, []int, []int64) {
	ks := r.pick(rng, 1+rng.IntN(r.p.Catalog.Lines))
	lines := make([]Line, len(ks))
	idx := make([]int, len(ks))
	qty := make([]int64, len(ks))
	for i, k := range ks {
		lines[i] = Line{SKU: skuName(k), Qty: 1}
		idx[i], qty[i] = r.index(s, k), 1
	}
	return lines, idx, qty
}

func neg(q []int64) []int64 {
	out := make([]int64, len(q))
	for i, v := range q {
		out[i] = -v
	}
	return out
}

func (r *runner) checkout(ctx context.Context, rng *rand.Rand, due time.Time, stage, s int, customer string) {
	lines, idx, qty := r.lines(rng, s)
	body := map[string]any{"lines": lines}
	if customer != "" {
		body["customer"] = customer
	}
	_, err := r.send(ctx, OpCheckout, due, stage, http.MethodPost, "/v1/stores/"+url.PathEscape(r.stores[s])+"/checkout", body)
	r.t.note(err, idx, neg(qty))
	if err == nil {
		r.t.bought(customer, idx, qty)
	}
}

func (r *runner) reserve(ctx context.Context, rng *rand.Rand, due time.Time, stage, s int, customer string) {
	lines, idx, qty := r.lines(rng, s)
	body := map[string]any{"lines": lines, "ttl_seconds": int(r.p.Reservation.TTL / time.Second)}
	if customer != "" {
		body["customer"] = customer
	}
	resp, err := r.send(ctx, OpReserve, due, stage, http.MethodPost, "/v1/stores/"+url.PathEscape(r.stores[s])+"/reservations", body)
	kind, unknown := classify(err)
	if kind != "" {
		if unknown { // a hold that may exist expires by itself
			r.t.hold(time.Now(), false)
		}
		return
	}
	var res struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(resp.body, &res) != nil || res.ID == "" {
		r.t.hold(time.Now(), false)
		return
	}
	f := rng.Float64()
	path := "/v1/reservations/" + url.PathEscape(res.ID)
	switch {
	case f < r.p.Reservation.Commit:
		r.t.hold(time.Now(), false)
		_, err := r.send(ctx, OpCommit, time.Now(), stage, http.MethodPost, path+"/commit", nil)
		r.t.note(err, idx, neg(qty))
		if err == nil {
			r.t.bought(customer, idx, qty)
		}
	case f < r.p.Reservation.Commit+r.p.Reservation.Release:
		r.t.hold(time.Now(), false)
		_, _ = r.send(ctx, OpRelease, time.Now(), stage, http.MethodPost, path+"/release", nil)
	default:
		r.t.hold(time.Now(), true)
	}
}

func (r *runner) bulk(ctx context.Context, rng *rand.Rand, due time.Time, stage int) {
	n := min(r.p.Catalog.BulkLines, len(r.stores)*r.p.Catalog.SKUs)
	type line struct {
		Store  string `json:"store"`
		SKU    string `json:"sku"`
		Delta  int64  `json:"delta"`
		Reason string `json:"reason"`
	}
	seen := map[int]bool{}
	ls := make([]line, 0, n)
	idx := make([]int, 0, n)
	for len(ls) < n {
		s, k := rng.IntN(len(r.stores)), rng.IntN(r.p.Catalog.SKUs)
		if seen[r.index(s, k)] {
			continue
		}
		seen[r.index(s, k)] = true
		ls = append(ls, line{Store: r.stores[s], SKU: skuName(k), Delta: 1 + rng.Int64N(10), Reason: "import"})
		idx = append(idx, r.index(s, k))
	}
	resp, err := r.send(ctx, OpBulk, due, stage, http.MethodPost, "/v1/adjustments", map[string]any{"updates": ls})
	if err != nil {
		for i := range ls {
			r.t.note(err, idx[i:i+1], []int64{ls[i].Delta})
		}
		return
	}
	var res struct {
		Results []struct {
			Status int             `json:"status"`
			Error  json.RawMessage `json:"error"`
		} `json:"results"`
	}
	if json.Unmarshal(resp.body, &res) != nil || len(res.Results) != len(ls) {
		unk := &opError{Kind: kindOther, Unknown: true, Err: fmt.Errorf("bulk reply of %d results for %d lines", len(res.Results), len(ls))}
		for i := range ls {
			r.t.note(unk, idx[i:i+1], []int64{ls[i].Delta})
		}
		return
	}
	for i, x := range res.Results {
		r.t.note(statusErr(response{status: x.Status, body: x.Error}, true), idx[i:i+1], []int64{ls[i].Delta})
	}
}

// send sends one request of op, due at due, and tallies it with its
// latency from due. A write with the plan's Idempotency carries a key of
// its own and is sent again with it while its outcome is unknown, up to
// Retries times: the latency then covers every attempt, as a customer
// waits for all of them.
func (r *runner) send(ctx context.Context, op string, due time.Time, stage int, method, path string, body any) (response, error) {
	key := ""
	write := method != http.MethodGet
	if write && r.p.Client.Idempotency {
		key = randomHex(12)
	}
	var (
		resp    response
		err     error
		retries int
	)
	for {
		resp, err = r.c.doKey(ctx, method, path, body, key)
		if err == nil {
			err = statusErr(resp, write)
		}
		_, unknown := classify(err)
		if !unknown || key == "" || retries >= r.p.Client.Retries || ctx.Err() != nil {
			break
		}
		retries++
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(retries*retries) * 20 * time.Millisecond):
		}
	}
	r.t.record(op, stage, due.Sub(r.start), time.Since(due), err, retries)
	return resp, err
}
