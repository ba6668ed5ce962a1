package persist_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
	u, err := url.Parse(databaseURL())
	require.NoError(t, err)
	px := newProxy(t, u.Host)
	pool := newPool(t, v.schema, px.addr())
	cfg := fastPersister(persist.PersisterConfig{BatchSize: 25})
	p, err := persist.NewPersister(v.e, pool, cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	workload(t, v, 4, 2, 60, testStores, testSKUs)
	waitFor(t, 20*time.Second, "catch up", func() bool { return v.caughtUp(t) })

	px.cut()
	workload(t, v, 5, 2, 60, testStores, testSKUs)
	waitFor(t, 20*time.Second, "failed writes while PostgreSQL is unreachable", func() bool { return p.Stats().WriteErrors >= 2 })
	require.False(t, v.caughtUp(t))
	// The events wait in Redis, pending or undelivered.
	var unpersisted int64
	for part := 0; part < 2; part++ {
		gs, err := v.rdb.XInfoGroups(context.Background(), v.e.StreamKey(part)).Result()
		require.NoError(t, err)
		unpersisted += gs[0].Pending + gs[0].Lag
	}
	require.Positive(t, unpersisted)

	px.restore()
	waitFor(t, 30*time.Second, "catch up after the outage", func() bool { return v.caughtUp(t) })
	v.checkLedger(t)
	cancel()
	require.NoError(t, <-done)
	done <- nil
}
