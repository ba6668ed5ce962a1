package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
)

// Fuzz tests of bad input: ID and key validation against a reference, and
// request building through the engine against miniredis (the Lua scripts
// get the request as JSON: every string must arrive intact or be refused
// before anything is written). Their seed corpora are in testdata/fuzz and
// run under plain go test; `go test -fuzz FuzzX ./internal/chaos/` explores.

// refValidID is the ID rule written out by hand: 1..64 characters, the
// first a letter or digit, the rest letters, digits, '.', '_' or '-'.
func refValidID(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '.' && c != '_' && c != '-')) {
			return false
		}
	}
	return true
}

func FuzzValidID(f *testing.F) {
	for _, s := range []string{"s1", "sofa-3.blue_x", "", "-x", "a/b", "a:b", "{0}", "..", "é", strings.Repeat("a", 65), "a\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := engine.ValidID(s)
		if got != refValidID(s) {
			t.Fatalf("ValidID(%q) = %v, reference says %v", s, got, !got)
		}
		// A valid ID is safe in a Redis key and a path segment.
		if got && strings.ContainsAny(s, ":{}/ \t\r\n\x00%") {
			t.Fatalf("ValidID accepted %q", s)
		}
	})
}

func FuzzValidIdempotencyKey(f *testing.F) {
	for _, s := range []string{"k", "order-42 retry#1", "", "\x7f", "é", strings.Repeat("k", 255), strings.Repeat("k", 256), "a\tb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, k string) {
		want := len(k) >= 1 && len(k) <= 255
		for i := 0; i < len(k); i++ {
			if k[i] < 0x20 || k[i] > 0x7e {
				want = false
			}
		}
		if got := engine.ValidIdempotencyKey(k); got != want {
			t.Fatalf("ValidIdempotencyKey(%q) = %v, want %v", k, got, want)
		}
	})
}

var fuzzEngine struct {
	once sync.Once
	m    *miniredis.Miniredis
	rdb  *redis.Client
	e    *engine.Engine
	err  error
}

// miniEngine is one engine on one miniredis for the whole fuzz process.
func miniEngine(t *testing.T) (*engine.Engine, *redis.Client) {
	fuzzEngine.once.Do(func() {
		m := miniredis.NewMiniRedis()
		if fuzzEngine.err = m.Start(); fuzzEngine.err != nil {
			return
		}
		fuzzEngine.m = m
		fuzzEngine.rdb = redis.NewClient(&redis.Options{Addr: m.Addr()})
		fuzzEngine.e, fuzzEngine.err = engine.New(engine.Config{Client: fuzzEngine.rdb, Prefix: "fz", Partitions: 4, DisableGroupCommit: true})
		if fuzzEngine.err == nil {
			fuzzEngine.err = fuzzEngine.e.Init(context.Background())
		}
	})
	if fuzzEngine.err != nil {
		t.Fatalf("miniredis engine: %v", fuzzEngine.err)
	}
	return fuzzEngine.e, fuzzEngine.rdb
}

func streamLens(t *testing.T, e *engine.Engine, rdb *redis.Client) int64 {
	var n int64
	for p := 0; p < e.Partitions(); p++ {
		l, err := rdb.XLen(context.Background(), e.StreamKey(p)).Result()
		if err != nil {
			t.Fatal(err)
		}
		n += l
	}
	return n
}

func isValidation(err error) bool {
	var ve *engine.ValidationError
	return errors.As(err, &ve)
}

// FuzzRequestBuilding sends a set, a checkout and a reservation built from
// arbitrary strings through the engine. Invalid input must be refused with
// a ValidationError before anything is written; valid input must apply,
// and the event must carry every string exactly as given.
func FuzzRequestBuilding(f *testing.F) {
	f.Add("s1", "sofa", "c1", "key-1", "count", int64(5))
	f.Add("s1", "so\"fa", "", "", "", int64(1))
	f.Add("s1", "sofa", "c\x00", "k", "reason with \"quotes\", \\backslashes\\ and ]] brackets", int64(3))
	f.Add("s1", "sofa", "", "k\n", "", int64(1))
	f.Add("s1", "sofa", "", "", strings.Repeat("r", 257), int64(1))
	f.Add("../s1", "sofa", "", "", "", int64(1))
	f.Add("s1", "sofa", "", "", "\xff\xfe", int64(1))
	f.Add("s1", "sofa", "", "{json}", "日本語の理由", int64(-1))
	f.Fuzz(func(t *testing.T, store, sku, customer, key, reason string, qty int64) {
		e, rdb := miniEngine(t)
		ctx := context.Background()
		op := engine.Op{IdempotencyKey: key, Principal: "fuzz"}
		if key != "" {
			op.IdempotencyKey = key + "-" + testsupport.RandomHex(4) // fresh, so the fuzzer's repeats are not replays
			if !engine.ValidIdempotencyKey(key) {
				op.IdempotencyKey = key
			}
		}
		badKey := op.IdempotencyKey != "" && !engine.ValidIdempotencyKey(op.IdempotencyKey)
		onHand := qty % 1000
		before := streamLens(t, e, rdb)
		r, err := e.Set(ctx, engine.SetRequest{Store: store, SKU: sku, OnHand: onHand + 1000, Reason: reason}, op)
		invalid := !refValidID(store) || !refValidID(sku) || len(reason) > engine.MaxReasonLen || !utf8.ValidString(reason) || badKey
		if invalid {
			if !isValidation(err) {
				t.Fatalf("set %q/%q reason %q key %q: want a ValidationError, got %v", store, sku, reason, op.IdempotencyKey, err)
			}
			if after := streamLens(t, e, rdb); after != before {
				t.Fatalf("a refused request wrote %d events", after-before)
			}
			return
		}
		if err != nil {
			t.Fatalf("set %q/%q: %v", store, sku, err)
		}
		if r.Item.Store != store || r.Item.SKU != sku {
			t.Fatalf("set returned item %q/%q for %q/%q", r.Item.Store, r.Item.SKU, store, sku)
		}
		if streamLens(t, e, rdb) == before {
			return // set to the same count: no event to look at
		}
		msgs, err := rdb.XRevRangeN(ctx, e.StreamKey(e.Partition(store)), "+", "-", 1).Result()
		if err != nil || len(msgs) != 1 {
			t.Fatalf("read the event: %v", err)
		}
		ev, err := engine.ParseEvent(msgs[0].ID, msgs[0].Values)
		if err != nil {
			t.Fatalf("the engine wrote an event it cannot parse: %v", err)
		}
		// Invalid UTF-8 arrives as JSON made it: each bad byte U+FFFD.
		wantReason := reason
		if !utf8.ValidString(reason) {
			b, _ := json.Marshal(reason)
			_ = json.Unmarshal(b, &wantReason)
		}
		if ev.Store != store || ev.SKU != sku || ev.Reason != wantReason {
			t.Fatalf("event carries %q/%q reason %q, sent %q/%q reason %q", ev.Store, ev.SKU, ev.Reason, store, sku, reason)
		}
		if op.IdempotencyKey != "" && ev.IdempotencyKey != op.IdempotencyKey {
			t.Fatalf("event carries operation id %q, sent key %q", ev.IdempotencyKey, op.IdempotencyKey)
		}

		// A checkout and a reservation of the item for the customer.
		n := qty%5 + 1
		before = streamLens(t, e, rdb)
		lines := []engine.Line{{SKU: sku, Qty: n}}
		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: store, Lines: lines, Customer: customer, Reason: reason}, engine.Op{})
		res, rerr := e.Reserve(ctx, engine.ReserveRequest{Store: store, Lines: lines, Customer: customer}, engine.Op{})
		if n < 1 || (customer != "" && !refValidID(customer)) {
			if !isValidation(err) || !isValidation(rerr) {
				t.Fatalf("checkout/reserve qty %d customer %q: want ValidationErrors, got %v / %v", n, customer, err, rerr)
			}
			if after := streamLens(t, e, rdb); after != before {
				t.Fatalf("a refused request wrote %d events", after-before)
			}
			return
		}
		if err != nil || rerr != nil {
			t.Fatalf("checkout/reserve of %q/%q qty %d customer %q: %v / %v", store, sku, n, customer, err, rerr)
		}
		if res.Reservation.Customer != customer || res.Reservation.Store != store || len(res.Reservation.Lines) != 1 || res.Reservation.Lines[0].SKU != sku {
			t.Fatalf("reservation %+v does not carry what was sent", res.Reservation)
		}
		got, err := e.GetReservation(ctx, res.Reservation.ID)
		if err != nil || got.Customer != customer || got.Lines[0].SKU != sku || got.Lines[0].Qty != n {
			t.Fatalf("reservation read back %+v, %v", got, err)
		}
		if _, err := e.Release(ctx, res.Reservation.ID, engine.Op{}); err != nil {
			t.Fatalf("release: %v", err)
		}
	})
}
