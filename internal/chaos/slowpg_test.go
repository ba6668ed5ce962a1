package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/httpapi"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// Scenario 10: PostgreSQL turns slow (a latency toxic on every round trip)
// under steady traffic. The persister falls behind and its lag grows; when
// PostgreSQL recovers the lag shrinks back. The persister's stats and the
// API's /metrics (inventory_persister_lag_events) show both.
func TestSlowPostgresLag(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOpts{})
	ctx := context.Background()
	p, _ := w.startPersister(nil, persist.PersisterConfig{BatchSize: 200, TrimInterval: 20 * time.Millisecond})
	api := w.startAPI(func(c *httpapi.Config) { c.PersisterStats = persisterStats(p) })
	lagOf := func() int64 {
		var n int64
		for _, v := range p.Stats().Lag {
			n += v
		}
		return n
	}
	// The worker updates its lag between batches, and with 300 ms per
	// round trip one batch transaction takes about 3 s: the slow window
	// must hold more than one batch for a sample to show the growth.
	slow := pick(7*time.Second, 30*time.Second)
	tr := newTraffic(t, w.e, trafficCfg{stores: []string{"s1", "s2"}, skus: []string{"sofa", "lamp"}, initial: 100000,
		workers: 4, ops: pick(4000, 100000), dur: slow + pick(3*time.Second, 15*time.Second),
		// about 2,000 operations a second in all: the traffic lasts through
		// the slow window (unpaced, a quiet machine ran the 16,000 before
		// PostgreSQL was slowed)
		pace: 2 * time.Millisecond})
	done := make(chan struct{})
	go func() { tr.run(ctx); close(done) }()

	// Before: the persister keeps up.
	// The lowest lag seen: it swings with each batch, and a machine busy
	// with other work may still be draining the start when sampling begins.
	before := int64(-1)
	for i := 0; i < 20; i++ {
		if l := lagOf(); before < 0 || l < before {
			before = l
		}
		time.Sleep(25 * time.Millisecond) // sampling interval
	}
	w.pproxy.Add("slow", "latency", "downstream", `{"latency":300,"jitter":20}`)
	var peak, peakMetric int64
	end := time.Now().Add(slow)
	for time.Now().Before(end) {
		peak = max(peak, lagOf())
		if v, ok := api.metric(t, "inventory_persister_lag_events"); ok {
			peakMetric = max(peakMetric, int64(v))
		}
		time.Sleep(50 * time.Millisecond) // sampling interval
	}
	w.pproxy.Remove("slow")
	t.Logf("persister lag: %d before, peak %d while PostgreSQL was slow (metric peak %d)", before, peak, peakMetric)
	// How far it grows depends on the traffic's rate, which a loaded
	// machine slows down as well: ask for clear growth, not a multiple.
	require.Greater(t, peak, before+30, "the lag grew while PostgreSQL was slow")
	require.Greater(t, peakMetric, before+30, "/metrics showed the lag")
	testsupport.WaitFor(t, 20*time.Second, "the lag shrinks once PostgreSQL is fast again", func() bool { return lagOf() < peak/4 })
	<-done
	testsupport.WaitFor(t, 20*time.Second, "the lag is gone after the traffic", func() bool {
		v, ok := api.metric(t, "inventory_persister_lag_events")
		return lagOf() == 0 && ok && v == 0
	})
	w.checkAll(tr)
}
