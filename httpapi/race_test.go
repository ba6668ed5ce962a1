package httpapi

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFlashSaleOverHTTP: many buyers race for one SKU, some retrying with
// the same Idempotency-Key; exactly the stock is sold, each key at most once.
func TestFlashSaleOverHTTP(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.put("web", "console", 20)
	const buyers = 40
	type pair struct{ first, retry *resp }
	results := make([]pair, buyers)
	var wg sync.WaitGroup
	for i := 0; i < buyers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			key := fmt.Sprintf("buyer-%d", i)
			body := `{"lines":[{"sku":"console","qty":1}]}`
			first := ts.req("POST", "/v1/stores/web/checkout", tokAdmin, body, "Idempotency-Key", key)
			retry := ts.req("POST", "/v1/stores/web/checkout", tokAdmin, body, "Idempotency-Key", key)
			results[i] = pair{first, retry}
		}(i)
	}
	wg.Wait()
	status := map[int]int{}
	for _, p := range results {
		status[p.first.Status]++
		if p.first.Status == 200 {
			require.Equal(t, 200, p.retry.Status)
			require.Equal(t, "true", p.retry.Header.Get("Idempotent-Replayed"))
			require.Equal(t, p.first.Body, p.retry.Body)
		}
	}
	require.Equal(t, map[int]int{200: 20, 409: 20}, status)
	it := ts.item("web", "console")
	require.Equal(t, int64(0), it.OnHand)
	require.Equal(t, int64(21), it.Version, "one version per sale")
}
