package testsupport

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Stub is a stand-in for the inventory's HTTP API that answers at a known
// pace, for the load harness's own tests: every request waits Delay; with
// Capacity, checkouts are served one at a time at that many per second (a
// server that cannot go faster); after StallAfter checkouts, every
// checkout that arrives waits until Stall has passed since then (a server
// that stops). It keeps items (PUT, GET) and sells them (checkout), so the
// harness's checker has a state to verify, and serves /metrics.
type Stub struct {
	URL        string
	Delay      time.Duration
	Capacity   float64
	StallAfter int64
	Stall      time.Duration
	// LoseEvery, when positive, applies every LoseEvery-th checkout and
	// then answers 504, as a proxy that lost the reply: its outcome is
	// unknown to the client. A checkout repeated with an Idempotency-Key
	// already applied is answered as the first time, changing nothing.
	LoseEvery int64

	// Checkouts counts the checkouts received.
	Checkouts atomic.Int64

	mu       sync.Mutex
	items    map[string]int64
	keys     map[string]bool
	serve    sync.Mutex // one checkout at a time under Capacity
	nextFree time.Time
	stallEnd atomic.Int64
}

// NewStub starts a stub on a loopback port, closed when the test ends.
// Set its fields before the first request.
func NewStub(t testing.TB) *Stub {
	t.Helper()
	s := &Stub{items: map[string]int64{}, keys: map[string]bool{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

func (s *Stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/metrics":
		fmt.Fprintf(w, "# TYPE inventory_persister_lag_events gauge\ninventory_persister_lag_events 3\ninventory_stream_length{partition=\"0\"} 5\ninventory_stream_length{partition=\"1\"} 7\ninventory_http_shed_total 0\n")
		return
	case r.URL.Path == "/healthz":
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	// /v1/stores/{store}/items/{sku} and /v1/stores/{store}/checkout
	switch {
	case len(parts) == 5 && parts[3] == "items" && r.Method == http.MethodPut:
		var in struct {
			OnHand int64 `json:"on_hand"`
		}
		_ = json.NewDecoder(r.Body).Decode(&in)
		s.mu.Lock()
		s.items[parts[2]+"/"+parts[4]] = in.OnHand
		s.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, "{}")
	case len(parts) == 5 && parts[3] == "items" && r.Method == http.MethodGet:
		s.mu.Lock()
		oh, ok := s.items[parts[2]+"/"+parts[4]]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `{"store":%q,"sku":%q,"on_hand":%d,"reserved":0,"version":0}`, parts[2], parts[4], oh)
	case len(parts) == 4 && parts[3] == "checkout" && r.Method == http.MethodPost:
		s.checkout(w, r, parts[2])
	default:
		http.NotFound(w, r)
	}
}

func (s *Stub) checkout(w http.ResponseWriter, r *http.Request, store string) {
	var in struct {
		Lines []struct {
			SKU string `json:"sku"`
			Qty int64  `json:"qty"`
		} `json:"lines"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n := s.Checkouts.Add(1)
	if s.Stall > 0 && n == s.StallAfter {
		s.stallEnd.Store(time.Now().Add(s.Stall).UnixNano())
	}
	if end := s.stallEnd.Load(); end > 0 {
		if d := time.Until(time.Unix(0, end)); d > 0 {
			time.Sleep(d)
		}
	}
	if s.Capacity > 0 {
		// Each checkout takes 1/Capacity of the one server, in arrival
		// order: it is answered when the server is free plus that.
		s.serve.Lock()
		now := time.Now()
		if s.nextFree.Before(now) {
			s.nextFree = now
		}
		s.nextFree = s.nextFree.Add(time.Duration(float64(time.Second) / s.Capacity))
		done := s.nextFree
		s.serve.Unlock()
		time.Sleep(time.Until(done))
	}
	time.Sleep(s.Delay)
	s.mu.Lock()
	defer s.mu.Unlock()
	key := r.Header.Get("Idempotency-Key")
	if key != "" && s.keys[key] {
		w.Header().Set("Idempotent-Replayed", "true")
		fmt.Fprint(w, `{"lines":[]}`)
		return
	}
	for _, l := range in.Lines {
		if s.items[store+"/"+l.SKU] < l.Qty {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `{"type":"https://inventory/problems/insufficient-stock"}`)
			return
		}
	}
	for _, l := range in.Lines {
		s.items[store+"/"+l.SKU] -= l.Qty
	}
	if key != "" {
		s.keys[key] = true
	}
	if s.LoseEvery > 0 && n%s.LoseEvery == 0 {
		http.Error(w, "reply lost", http.StatusGatewayTimeout)
		return
	}
	fmt.Fprint(w, `{"lines":[]}`)
}
