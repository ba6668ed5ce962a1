package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestItemRefusals: every insufficient-stock answer of a store route counts
// once for each short line's item, and for no other item; a sale that goes
// through counts nothing; 40 concurrent refusals count 40. The counts reach
// Redis, with an expiry.
func TestItemRefusals(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.put("s1", "tv", 2)
	ts.put("s1", "radio", 1)
	ts.put("s2", "tv", 0)
	count := func(ts *testServer, store, sku string) int64 {
		t.Helper()
		r := ts.req("GET", "/v1/stores/"+store+"/items/"+sku+"/refusals", tokReader, "")
		require.Equal(t, 200, r.Status, "%s", r.Body)
		var b struct {
			Store, SKU string
			Refusals   int64
		}
		require.NoError(t, json.Unmarshal(r.Body, &b))
		require.Equal(t, store, b.Store)
		require.Equal(t, sku, b.SKU)
		return b.Refusals
	}
	checkout := func(lines string) int {
		return ts.req("POST", "/v1/stores/s1/checkout", tokAdmin, `{"lines":`+lines+`}`).Status
	}
	require.Equal(t, int64(0), count(ts, "s1", "tv"))
	require.Equal(t, 200, checkout(`[{"sku":"tv","qty":1}]`))
	require.Equal(t, int64(0), count(ts, "s1", "tv"), "a sale is no refusal")

	// Short on tv only: tv counts, radio does not.
	require.Equal(t, 409, checkout(`[{"sku":"tv","qty":5},{"sku":"radio","qty":1}]`))
	require.Equal(t, int64(1), count(ts, "s1", "tv"))
	require.Equal(t, int64(0), count(ts, "s1", "radio"))
	// Short on both.
	require.Equal(t, 409, checkout(`[{"sku":"tv","qty":5},{"sku":"radio","qty":2}]`))
	require.Equal(t, int64(2), count(ts, "s1", "tv"))
	require.Equal(t, int64(1), count(ts, "s1", "radio"))
	// A reservation refused counts too.
	r := ts.req("POST", "/v1/stores/s1/reservations", tokAdmin, `{"lines":[{"sku":"radio","qty":3}],"ttl_seconds":60}`)
	require.Equal(t, 409, r.Status, "%s", r.Body)
	require.Equal(t, int64(2), count(ts, "s1", "radio"))

	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st := checkout(`[{"sku":"tv","qty":9}]`); st != 409 {
				panic(fmt.Sprintf("checkout answered %d", st))
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int64(42), count(ts, "s1", "tv"))
	require.Equal(t, int64(0), count(ts, "s2", "tv"), "another store's item is another count")

	// The counts reach Redis, where every process reads them.
	inRedis := func(sku string) int64 {
		n, err := ts.e.Refusals(context.Background(), "s1", sku)
		require.NoError(t, err)
		return n
	}
	deadline := time.Now().Add(5 * time.Second)
	for inRedis("tv") != 42 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	require.Equal(t, int64(42), inRedis("tv"))
	require.Equal(t, int64(2), inRedis("radio"))
	ttl, err := ts.rdb.PTTL(context.Background(), ts.e.RefusalsKey("s1")).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, time.Hour, "the counts expire, a day after the last")

	// A bad id is a 400 naming it.
	r = ts.req("GET", "/v1/stores/s1/items/-bad/refusals", tokReader, "")
	require.Equal(t, 400, r.Status, "%s", r.Body)
	require.Contains(t, string(r.Body), `"field":"sku"`)
	// A store token reads its own store's counts only.
	require.Equal(t, 200, ts.req("GET", "/v1/stores/s1/items/tv/refusals", tokS1, "").Status)
	require.Equal(t, 403, ts.req("GET", "/v1/stores/s2/items/tv/refusals", tokS1, "").Status)
}
