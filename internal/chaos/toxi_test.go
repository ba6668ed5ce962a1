package chaos

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// toxi is an in-process toxiproxy proxy in front of one upstream, listening
// on a loopback port of its own.
type toxi struct {
	t testing.TB
	p *toxiproxy.Proxy
}

var proxySeq atomic.Int64

func newToxi(t testing.TB, upstream string) *toxi {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, fmt.Sprintf("p%d", proxySeq.Add(1)), "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("start proxy to %s: %v", upstream, err)
	}
	t.Cleanup(p.Stop)
	return &toxi{t: t, p: p}
}

// Addr is where clients connect.
func (x *toxi) Addr() string { return x.p.Listen }

// Cut closes every connection and refuses new ones (connection refused), as
// a dead host would.
func (x *toxi) Cut() { x.p.Stop() }

// Restore accepts connections again, on the same port.
func (x *toxi) Restore() {
	x.t.Helper()
	if err := x.p.Start(); err != nil && err != toxiproxy.ErrProxyAlreadyStarted {
		x.t.Fatalf("restore proxy: %v", err)
	}
}

// Add installs a toxic: typ is a toxiproxy toxic type (latency, timeout,
// reset_peer, …), stream "upstream" or "downstream", attrs its JSON
// attributes.
func (x *toxi) Add(name, typ, stream, attrs string) {
	x.t.Helper()
	js := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"toxicity":1,"attributes":%s}`, name, typ, stream, attrs)
	if _, err := x.p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
		x.t.Fatalf("add toxic %s: %v", name, err)
	}
}

// Remove removes a toxic by name.
func (x *toxi) Remove(name string) {
	x.t.Helper()
	if err := x.p.Toxics.RemoveToxic(context.Background(), name); err != nil {
		x.t.Fatalf("remove toxic %s: %v", name, err)
	}
}
