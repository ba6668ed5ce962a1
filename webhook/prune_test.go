package webhook_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/webhook"
)

// The workers delete delivered and failed deliveries older than Retention,
// in batches, and never a pending one nor a younger one; the log then shows
// what is left.
func TestDeliveriesPrunedPastRetention(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	ctx := t.Context()
	const secret = "a-secret-of-16-bytes-or-more"
	ok := newReceiver(t, secret, nil)
	down := newReceiver(t, secret, func(int, got) int { return http.StatusInternalServerError })
	a := v.subscribe(t, ok.srv.URL, webhook.NameStockChanged)
	b := v.subscribe(t, down.srv.URL, webhook.NameStockChanged)
	// The failing endpoint is tried once and then waits an hour: its rows
	// stay pending, within a 30-day retry window.
	cfg := webhook.Config{RetryMin: time.Hour, RetryMax: time.Hour, MaxAge: 30 * 24 * time.Hour}
	noPrune := cfg
	noPrune.Retention = -1
	d, stop := v.start(t, noPrune)
	const items = 8
	for i := range items {
		v.set(t, fmt.Sprint("s", i%3), fmt.Sprint("sku", i), 5, nil)
	}
	count := func(where string) int64 {
		return testsupport.Count(t, v.pool, `SELECT count(*) FROM webhook_deliveries WHERE `+where)
	}
	testsupport.WaitFor(t, 30*time.Second, "every delivery made or tried", func() bool {
		return count(`status = 'delivered'`) == items && count(`attempts = 1 AND status = 'pending' AND leased_until IS NULL`) == items
	})
	stop()
	require.Zero(t, d.Stats().Pruned)
	require.Equal(t, int64(items), count(fmt.Sprintf(`webhook_id = '%s' AND status = 'delivered'`, a.ID)))
	require.Equal(t, int64(items), count(fmt.Sprintf(`webhook_id = '%s' AND status = 'pending'`, b.ID)))

	// The first 10 rows written become 10 days old; one of the delivered
	// ones among them failed instead.
	_, err := v.pool.Exec(ctx, `UPDATE webhook_deliveries SET created_at = now() - interval '10 days'
		WHERE seq IN (SELECT seq FROM webhook_deliveries ORDER BY seq LIMIT 10)`)
	require.NoError(t, err)
	_, err = v.pool.Exec(ctx, `UPDATE webhook_deliveries SET status = 'failed'
		WHERE seq = (SELECT min(seq) FROM webhook_deliveries WHERE status = 'delivered')`)
	require.NoError(t, err)
	old := count(`created_at < now() - interval '9 days'`)
	require.Equal(t, int64(10), old)
	oldDone := count(`created_at < now() - interval '9 days' AND status <> 'pending'`)
	oldPending := old - oldDone
	require.Positive(t, oldDone)
	require.Positive(t, oldPending)
	total := count(`true`)

	pruning := cfg
	pruning.Retention = 48 * time.Hour
	pruning.PruneInterval = 50 * time.Millisecond
	pruning.PruneBatch = 2
	d, _ = v.start(t, pruning)
	testsupport.WaitFor(t, 20*time.Second, "the old delivered and failed rows pruned", func() bool {
		return d.Stats().Pruned >= oldDone
	})
	time.Sleep(200 * time.Millisecond) // more prune runs find nothing
	require.Equal(t, oldDone, d.Stats().Pruned)
	require.Equal(t, total-oldDone, count(`true`))
	require.Zero(t, count(`created_at < now() - interval '9 days' AND status <> 'pending'`))
	require.Equal(t, oldPending, count(`created_at < now() - interval '9 days' AND status = 'pending'`), "pending rows are never pruned")
	log, err := v.store.Deliveries(ctx, b.ID, 100)
	require.NoError(t, err)
	require.Len(t, log, items, "the failing endpoint's pending rows are all in its log")

	// A direct run with nothing left to prune; a bad age changes nothing.
	n, err := v.store.PruneDeliveries(ctx, 48*time.Hour, 0)
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = v.store.PruneDeliveries(ctx, 0, 0)
	require.ErrorContains(t, err, "must be positive")
	require.Equal(t, total-oldDone, count(`true`))
}
