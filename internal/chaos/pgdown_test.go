package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// Scenario 7: PostgreSQL goes down (its proxy cut) mid-traffic. Selling
// continues on Redis while the events wait in the streams; once a stream
// passes its high watermark, writes are shed with ErrBackpressure (503 with
// Retry-After over HTTP) and none is lost. When PostgreSQL is back the
// ledger catches up and writes flow again.
func TestPostgresDown(t *testing.T) {
	t.Parallel()
	const watermark = 400
	w := newWorld(t, worldOpts{engine: func(c *engine.Config) { c.StreamHighWatermark = watermark }})
	ctx := context.Background()
	p, _ := w.startPersister(nil, persist.PersisterConfig{RetentionCount: 10, RetentionWindow: 10 * time.Millisecond})
	ledger := persist.NewLedger(w.pool)
	outage := pick(3*time.Second, 30*time.Second)
	tr := newTraffic(t, w.e, trafficCfg{stores: []string{"s1", "s2"}, skus: []string{"sofa", "lamp"}, initial: 100000,
		workers: 4, ops: pick(3000, 100000), dur: outage + pick(4*time.Second, 20*time.Second), giveUp: 2 * time.Second})
	done := make(chan struct{})
	go func() { tr.run(ctx); close(done) }()

	testsupport.WaitFor(t, 10*time.Second, "the ledger receives events", func() bool { return p.Stats().EventsPersisted > 50 })
	w.pproxy.Cut()
	okAtCut := tr.ok.Load()
	require.Error(t, ledger.Ping(ctx), "readiness: PostgreSQL is down")
	testsupport.WaitFor(t, outage, "writes shed with backpressure", func() bool {
		n, ok := tr.errKinds.Load("backpressure")
		return ok && n.(interface{ Load() int64 }).Load() > 0
	})
	soldDuringOutage := tr.ok.Load() - okAtCut
	time.Sleep(outage / 2) // hold the outage: it is the fault, not a wait for work
	st := p.Stats()
	var lag int64
	for _, n := range st.Lag {
		lag += n
	}
	t.Logf("PostgreSQL down: %d writes acknowledged meanwhile, persister write errors %d, lag %d", soldDuringOutage, st.WriteErrors, lag)
	require.Positive(t, soldDuringOutage, "selling continued while PostgreSQL was down")
	require.Positive(t, st.WriteErrors, "the persister saw the outage")
	for part := 0; part < w.parts; part++ {
		n, err := w.direct.XLen(ctx, w.ins.StreamKey(part)).Result()
		require.NoError(t, err)
		require.LessOrEqual(t, n, int64(watermark+256), "partition %d: the stream stops near its watermark", part)
	}
	w.pproxy.Restore()
	require.NoError(t, ledger.Ping(ctx), "readiness: PostgreSQL is back")
	bpAtRestore := counter(tr, "backpressure")
	okAtRestore := tr.ok.Load()
	<-done
	require.Positive(t, tr.ok.Load()-okAtRestore, "writes flow again after the outage")
	t.Logf("backpressure refusals: %d during the outage, %d after it", bpAtRestore, counter(tr, "backpressure")-bpAtRestore)
	w.checkAll(tr)
}

func counter(tr *traffic, kind string) int64 {
	n, ok := tr.errKinds.Load(kind)
	if !ok {
		return 0
	}
	return n.(interface{ Load() int64 }).Load()
}
