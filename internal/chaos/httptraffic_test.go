//lint:file-ignore ST1008 a retried call answers (err, unknown, items): the order in which the history records an outcome

package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"strconv"
	"sync"
	"time"

	"github.com/shelfline/inventory/engine"
)

// httpTraffic runs clients against the HTTP API, with the same bookkeeping
// as traffic: keyed writes retried with their Idempotency-Key until a
// definitive answer, every outcome recorded for porcupine and the
// exactly-once check. Any 5xx but 503 with Retry-After is a failure.
type httpTraffic struct {
	*traffic
	api   func() *apiServer
	token string
}

var errRefused = errors.New("refused")

// do sends one keyed request until it answers; it returns the 2xx body,
// errRefused for a 409, and unknown when no answer came.
func (h *httpTraffic) do(ctx context.Context, method, path, body, key string) (string, error, bool) {
	start := time.Now()
	for {
		r, err := h.api().do(method, path, h.token, body, "Idempotency-Key", key)
		switch {
		case err != nil:
			n, _ := h.errKinds.LoadOrStore("connection", new(countT))
			n.(*countT).Add(1)
		case r.status == 200 || r.status == 201:
			return r.body, nil, false
		case r.status == 409:
			return "", errRefused, false
		case r.status == 503 || r.status == 429:
			if r.header.Get("Retry-After") == "" {
				h.fail("%s %s: %d without Retry-After", method, path, r.status)
			}
			n, _ := h.errKinds.LoadOrStore(strconv.Itoa(r.status), new(countT))
			n.(*countT).Add(1)
			h.unavailable.Add(1)
		default:
			h.fail("%s %s: unexpected %d %s", method, path, r.status, r.body)
			return "", errRefused, true
		}
		if time.Since(start) > h.cfg.giveUp || ctx.Err() != nil {
			return "", err, true
		}
		h.retries.Add(1)
		time.Sleep(time.Duration(20+rand.Intn(60)) * time.Millisecond) // client backoff
	}
}

type countT = atomicInt64

func (h *httpTraffic) run(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.dur)
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < h.cfg.workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(time.Now().UnixNano() + int64(w)))
			for i := 0; i < h.cfg.ops && ctx.Err() == nil; i++ {
				store := h.cfg.stores[rng.Intn(len(h.cfg.stores))]
				sku := h.cfg.skus[rng.Intn(len(h.cfg.skus))]
				switch roll := rng.Intn(10); {
				case roll < 2:
					h.get(w, store, sku)
				case roll < 8:
					h.sell(ctx, w, store, sku, int64(1+rng.Intn(2)))
				default:
					h.restock(ctx, w, store, sku, int64(1+rng.Intn(5)))
				}
			}
		}(w)
	}
	wg.Wait()
	h.resolve()
}

func (h *httpTraffic) get(w int, store, sku string) {
	call := h.rec.now()
	r, err := h.api().do("GET", "/v1/stores/"+store+"/items/"+sku, h.token, "")
	if err != nil || r.status != 200 {
		if err == nil && r.status >= 500 && (r.status != 503 || r.header.Get("Retry-After") == "") {
			h.fail("GET %s/%s: %d %s", store, sku, r.status, r.body)
		}
		return
	}
	var it engine.Item
	if err := json.Unmarshal([]byte(r.body), &it); err != nil {
		h.fail("GET %s/%s: %v", store, sku, err)
		return
	}
	h.reads.Add(1)
	h.rec.add(w, opInput{itemName(store, sku), opRead, 0}, call, opOutput{OK: true, HasState: true, State: stateOf(it)})
}

func (h *httpTraffic) sell(ctx context.Context, w int, store, sku string, n int64) {
	key, call := h.newKey(), h.rec.now()
	redo := func(ctx context.Context) (error, bool, []engine.Item) {
		body, err, unknown := h.do(ctx, "POST", "/v1/stores/"+store+"/checkout", fmt.Sprintf(`{"lines":[{"sku":%q,"qty":%d}]}`, sku, n), key)
		if err != nil || unknown {
			return err, unknown, nil
		}
		var res struct{ Lines []engine.Item }
		if jerr := json.Unmarshal([]byte(body), &res); jerr != nil {
			h.fail("checkout: %v", jerr)
		}
		return nil, false, res.Lines
	}
	err, unknown, items := redo(ctx)
	h.settle(w, opCheckout, itemName(store, sku), n, key, call, redo, err, unknown, items)
}

func (h *httpTraffic) restock(ctx context.Context, w int, store, sku string, d int64) {
	key, call := h.newKey(), h.rec.now()
	redo := func(ctx context.Context) (error, bool, []engine.Item) {
		body, err, unknown := h.do(ctx, "POST", "/v1/stores/"+store+"/items/"+sku+"/adjust", fmt.Sprintf(`{"delta":%d,"reason":"restock"}`, d), key)
		if err != nil || unknown {
			return err, unknown, nil
		}
		var it engine.Item
		if jerr := json.Unmarshal([]byte(body), &it); jerr != nil {
			h.fail("adjust: %v", jerr)
		}
		return nil, false, []engine.Item{it}
	}
	err, unknown, items := redo(ctx)
	h.settle(w, opAdjust, itemName(store, sku), d, key, call, redo, err, unknown, items)
}
