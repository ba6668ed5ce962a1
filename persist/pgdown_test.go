package persist_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// proxy forwards TCP connections to PostgreSQL until cut: then it drops
// every open connection and refuses new ones, as a dead server would.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
}

func newProxy(t testing.TB, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		s, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[s] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go func() { _, _ = io.Copy(s, c); s.Close(); c.Close() }()
		go func() { _, _ = io.Copy(c, s); s.Close(); c.Close() }()
	}
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
}

func (p *proxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

func TestPersisterSurvivesPostgreSQLOutage(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 2})
	u, err := url.Parse(testsupport.DatabaseURL())
	require.NoError(t, err)
	px := newProxy(t, u.Host)
	pool := testsupport.Pool(t, v.schema, testsupport.Via(px.addr()))
	p, stop := testsupport.StartPersister(t, v.e, pool, persist.PersisterConfig{BatchSize: 25})

	workload(t, v, 4, 2, 60, testStores, testSKUs)
	testsupport.WaitFor(t, 20*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })

	px.cut()
	workload(t, v, 5, 2, 60, testStores, testSKUs)
	testsupport.WaitFor(t, 20*time.Second, "failed writes while PostgreSQL is unreachable", func() bool { return p.Stats().WriteErrors >= 2 })
	require.False(t, testsupport.LedgerCaughtUp(t, v.pool, v.e))
	// The events wait in Redis, pending or undelivered.
	var unpersisted int64
	for part := 0; part < 2; part++ {
		gs, err := v.rdb.XInfoGroups(context.Background(), v.e.StreamKey(part)).Result()
		require.NoError(t, err)
		unpersisted += gs[0].Pending + gs[0].Lag
	}
	require.Positive(t, unpersisted)

	px.restore()
	testsupport.WaitFor(t, 30*time.Second, "catch up after the outage", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
	require.NoError(t, stop())
}

// While PostgreSQL is away the stream fills up to the engine's high
// watermark and writes are shed with ErrBackpressure, never dropped; once it
// is back the persister catches up and trims to its retention count, and
// writes flow again.
func TestPersisterOutageBackpressureThenRecovery(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 1, highWatermark: 60})
	ctx := context.Background()
	u, err := url.Parse(testsupport.DatabaseURL())
	require.NoError(t, err)
	px := newProxy(t, u.Host)
	pool := testsupport.Pool(t, v.schema, testsupport.Via(px.addr()))
	testsupport.StartPersister(t, v.e, pool, persist.PersisterConfig{RetentionCount: 20})

	_, err = v.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "a", OnHand: 1}, engine.Op{})
	require.NoError(t, err)
	testsupport.WaitFor(t, 10*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	px.cut()
	accepted := 1
	for {
		_, err := v.e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "a", Delta: 1}, engine.Op{})
		if errors.Is(err, engine.ErrBackpressure) {
			break
		}
		require.NoError(t, err)
		accepted++
		require.Less(t, accepted, 200, "writes must be shed at the high watermark")
	}
	px.restore()
	testsupport.WaitFor(t, 20*time.Second, "catch up after the outage", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	testsupport.WaitFor(t, 10*time.Second, "trim to the retention count", func() bool { return v.rdb.XLen(ctx, v.e.StreamKey(0)).Val() <= 20 })
	_, err = v.e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "a", Delta: 1}, engine.Op{})
	require.NoError(t, err, "writes flow again")
	accepted++
	testsupport.WaitFor(t, 10*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
	require.Equal(t, int64(accepted), testsupport.Count(t, v.pool, `SELECT count(*) FROM inventory_events`), "every accepted write is in the ledger")
}
