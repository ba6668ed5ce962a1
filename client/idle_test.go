package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/client"
)

// TestFeedsReopenASilentConnection: a feed connection that stops carrying
// anything without being closed (the proxy freezes it, as a network device
// that dropped it would) is taken as broken after the idle timeout and
// reopened from the last position: the events made meanwhile arrive once,
// in order. A read that waits past the idle timeout while the server's
// heartbeat (every 200 ms here) arrives keeps its connection.
func TestFeedsReopenASilentConnection(t *testing.T) {
	for _, kind := range []string{"sse", "websocket"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t)
			p := newTCPProxy(t, srv.url)
			c := client.New(p.url(), tokAdmin, client.WithFeedIdleTimeout(time.Second))
			w := client.New(srv.url, tokAdmin) // writes bypass the proxy
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := w.PutItem(ctx, "s1", "lamp", client.SetItem{OnHand: 100})
			require.NoError(t, err)

			var next func() (client.FeedMessage, error)
			if kind == "sse" {
				st, err := c.Events(ctx, client.EventsRequest{Store: "s1"})
				require.NoError(t, err)
				defer st.Close()
				next = st.Next
			} else {
				st, err := c.WebSocketEvents(ctx, client.EventsRequest{Store: "s1"})
				require.NoError(t, err)
				defer st.Close()
				next = st.Next
			}
			version := int64(1)
			read := func(n int) []string {
				t.Helper()
				var out []string
				for i := 0; i < n; i++ {
					m, err := next()
					require.NoError(t, err)
					require.NotNil(t, m.Event, "%+v", m)
					require.Equal(t, version+1, m.Event.Version, "in order, none lost or repeated")
					version = m.Event.Version
					out = append(out, m.Event.Reason)
				}
				return out
			}

			adjustments(t, ctx, w, "a", 2)
			require.Equal(t, []string{"a1", "a2"}, read(2))
			conns := p.connections()

			// A read that waits 2.5 idle timeouts with nothing but the
			// heartbeat arriving: the connection stays.
			errc := make(chan error, 1)
			go func() {
				time.Sleep(2500 * time.Millisecond)
				_, err := w.Adjust(ctx, "s1", "lamp", client.Adjustment{Delta: -1, Reason: "b1"})
				errc <- err
			}()
			waited := time.Now()
			require.Equal(t, []string{"b1"}, read(1))
			require.GreaterOrEqual(t, time.Since(waited), 2*time.Second, "the read waited")
			require.NoError(t, <-errc)
			require.Equal(t, conns, p.connections(), "the heartbeat kept the connection open: %q", p.lines())

			// Frozen: nothing arrives, not even the heartbeat. After the
			// idle timeout the feed reconnects and resumes.
			p.freeze()
			frozenAt := time.Now()
			adjustments(t, ctx, w, "c", 3)
			require.Equal(t, []string{"c1", "c2", "c3"}, read(3))
			require.Greater(t, p.connections(), conns, "a new connection")
			require.GreaterOrEqual(t, time.Since(frozenAt), time.Second, "not before the idle timeout")
		})
	}
}
