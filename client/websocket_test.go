package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/client"
	"github.com/shelfline/inventory/httpapi"
	"github.com/shelfline/inventory/internal/testsupport"
)

// tcpProxy forwards loopback TCP connections to a server, and can cut
// every connection it carries, as a network failure would.
type tcpProxy struct {
	ln       net.Listener
	target   string
	mu       sync.Mutex
	conns    map[net.Conn]bool
	accepted int
	// frozen: the connections accepted up to this count forward nothing
	// any more, yet stay open, as behind a network device that dropped
	// them silently.
	frozen int
	// requests are the first lines of the requests it carried.
	requests []string
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &tcpProxy{ln: ln, target: strings.TrimPrefix(target, "http://"), conns: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.forward(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		wg.Wait()
	})
	return p
}

func (p *tcpProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *tcpProxy) forward(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.accepted++
	idx := p.accepted
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		delete(p.conns, up)
		p.mu.Unlock()
		c.Close()
		up.Close()
	}()
	done := make(chan struct{}, 2)
	go func() {
		_ = p.copy(c, up, idx)
		done <- struct{}{}
	}()
	go func() {
		// Note the request line, then forward the rest as it comes.
		b := make([]byte, 4096)
		n, err := c.Read(b)
		if n > 0 {
			line, _, _ := strings.Cut(string(b[:n]), "\r\n")
			p.mu.Lock()
			p.requests = append(p.requests, line)
			p.mu.Unlock()
			_, _ = up.Write(b[:n])
		}
		if err == nil {
			_ = p.copy(up, c, idx)
		}
		done <- struct{}{}
	}()
	<-done
}

// copy forwards src to dst, dropping what arrives once connection idx is
// frozen.
func (p *tcpProxy) copy(dst, src net.Conn, idx int) error {
	b := make([]byte, 32<<10)
	for {
		n, err := src.Read(b)
		if n > 0 {
			p.mu.Lock()
			frozen := idx <= p.frozen
			p.mu.Unlock()
			if !frozen {
				if _, werr := dst.Write(b[:n]); werr != nil {
					return werr
				}
			}
		}
		if err != nil {
			return err
		}
	}
}

// freeze makes every connection it carries now forward nothing more, in
// either direction, without closing it; later connections forward as
// usual.
func (p *tcpProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen = p.accepted
}

func (p *tcpProxy) connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// cut closes every connection it carries.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *tcpProxy) open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) / 2
}

func (p *tcpProxy) lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requests...)
}

// adjustments makes n adjustments of s1/lamp with reasons prefix1..prefixn.
func adjustments(t *testing.T, ctx context.Context, c *client.Client, prefix string, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		_, err := c.Adjust(ctx, "s1", "lamp", client.Adjustment{Delta: -1, Reason: fmt.Sprintf("%s%d", prefix, i)})
		require.NoError(t, err)
	}
}

// reasons reads n events and returns their reasons, checking that their
// versions follow each other.
func reasons(t *testing.T, st *client.WebSocketStream, n int, version *int64) []string {
	t.Helper()
	var out []string
	for i := 0; i < n; i++ {
		m, err := st.Next()
		require.NoError(t, err)
		require.NotNil(t, m.Event, "message %d: %+v", i, m)
		require.Nil(t, m.Gap)
		require.NotEmpty(t, m.ID)
		require.Equal(t, m.ID, st.LastEventID())
		require.Equal(t, *version+1, m.Event.Version, "in order, none lost or repeated")
		*version = m.Event.Version
		out = append(out, m.Event.Reason)
	}
	return out
}

// TestWebSocketEventsInOrderAndResumed: events come in order; a connection
// cut by the network is reopened from the last position, with every event
// made meanwhile once; a stream cut before its first event resumes from the
// position the server opened it with.
func TestWebSocketEventsInOrderAndResumed(t *testing.T) {
	srv := newServer(t)
	p := newTCPProxy(t, srv.url)
	c := client.New(p.url(), tokAdmin)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.PutItem(ctx, "s1", "lamp", client.SetItem{OnHand: 100})
	require.NoError(t, err)

	st, err := c.WebSocketEvents(ctx, client.EventsRequest{Store: "s1"})
	require.NoError(t, err)
	defer st.Close()
	opening := st.LastEventID()
	require.NotEmpty(t, opening, "the feed's position is known before any event")
	version := int64(1)
	adjustments(t, ctx, c, "a", 5)
	require.Equal(t, []string{"a1", "a2", "a3", "a4", "a5"}, reasons(t, st, 5, &version))
	before := st.LastEventID()

	// Cut the connection; changes made before Next notices come after the
	// reconnect, each once.
	p.cut()
	adjustments(t, ctx, c, "b", 3)
	require.Equal(t, []string{"b1", "b2", "b3"}, reasons(t, st, 3, &version))
	lines := p.lines()
	require.GreaterOrEqual(t, len(lines), 2)
	require.Contains(t, lines[len(lines)-1], "last_event_id="+strings.ReplaceAll(before, ",", "%2C"), "resumed from the last event read")

	// Cut again with nothing in flight, then read on.
	p.cut()
	adjustments(t, ctx, c, "c", 2)
	require.Equal(t, []string{"c1", "c2"}, reasons(t, st, 2, &version))
	require.NoError(t, st.Close())
	require.NoError(t, st.Close(), "closing twice is harmless")

	// A stream cut before its first event resumes from its opening
	// position: the change made while it was cut is not lost.
	st2, err := c.WebSocketEvents(ctx, client.EventsRequest{Store: "s1"})
	require.NoError(t, err)
	defer st2.Close()
	p.cut()
	adjustments(t, ctx, c, "d", 1)
	require.Equal(t, []string{"d1"}, reasons(t, st2, 1, &version))

	// A position of either feed resumes the other: the SSE feed from the
	// WebSocket's opening position replays everything since.
	sse, err := c.Events(ctx, client.EventsRequest{Store: "s1", LastEventID: opening})
	require.NoError(t, err)
	defer sse.Close()
	m, err := sse.Next()
	require.NoError(t, err)
	require.Equal(t, "a1", m.Event.Reason)
}

// TestWebSocketEventsGap: a stream resumed from a position whose following
// events were trimmed begins with the gap, then carries on with the events
// after it; the gap is reported once.
func TestWebSocketEventsGap(t *testing.T) {
	srv := newServer(t)
	c := client.New(srv.url, tokAdmin)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := c.WebSocketEvents(ctx, client.EventsRequest{Store: "s1"})
	require.NoError(t, err)
	old := st.LastEventID()
	require.NoError(t, st.Close())

	_, err = c.PutItem(ctx, "s1", "lamp", client.SetItem{OnHand: 5})
	require.NoError(t, err)
	part := srv.e.Partition("s1")
	require.NoError(t, srv.rdb.XTrimMaxLen(ctx, srv.e.StreamKey(part), 0).Err())
	_, err = c.PutItem(ctx, "s1", "lamp", client.SetItem{OnHand: 6})
	require.NoError(t, err)

	st, err = c.WebSocketEvents(ctx, client.EventsRequest{Store: "s1", LastEventID: old})
	require.NoError(t, err)
	defer st.Close()
	m, err := st.Next()
	require.NoError(t, err)
	require.NotNil(t, m.Gap, "the gap comes first: %+v", m)
	require.Nil(t, m.Event)
	require.Equal(t, []int{part}, m.Gap.Partitions)
	require.NotEmpty(t, m.Gap.Detail)
	require.NotEqual(t, old, m.ID, "the position after the gap")
	require.Equal(t, m.ID, st.LastEventID())

	_, err = c.PutItem(ctx, "s1", "lamp", client.SetItem{OnHand: 7})
	require.NoError(t, err)
	m, err = st.Next()
	require.NoError(t, err)
	require.NotNil(t, m.Event)
	require.Equal(t, int64(7), m.Event.OnHand, "the events after the gap")
}

// TestWebSocketEventsRefused: a refused handshake is a *client.Problem
// with the server's problem+json, at once and without retry; a feed the
// token may not hold past its share is retried, then a 429 Problem.
func TestWebSocketEventsRefused(t *testing.T) {
	srv := newServer(t, func(c *httpapi.Config) { c.MaxStreams = 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	_, err := client.New(srv.url, "wrong-token").WebSocketEvents(ctx, client.EventsRequest{})
	var p *client.Problem
	require.True(t, errors.As(err, &p), "%v", err)
	require.Equal(t, http.StatusUnauthorized, p.Status)
	require.NotEmpty(t, p.RequestID, "the server's problem+json, not one made of the status")

	_, err = client.New(srv.url, tokS1).WebSocketEvents(ctx, client.EventsRequest{Store: "s2"})
	require.True(t, errors.As(err, &p), "%v", err)
	require.Equal(t, http.StatusForbidden, p.Status)

	_, err = client.New(srv.url, tokAdmin).WebSocketEvents(ctx, client.EventsRequest{LastEventID: "nonsense"})
	require.True(t, errors.As(err, &p), "%v", err)
	require.Equal(t, http.StatusBadRequest, p.Status)

	c := client.New(srv.url, tokAdmin, client.WithMaxAttempts(2), client.WithBackoffCap(50*time.Millisecond))
	st, err := c.WebSocketEvents(ctx, client.EventsRequest{})
	require.NoError(t, err)
	defer st.Close()
	_, err = c.WebSocketEvents(ctx, client.EventsRequest{})
	require.True(t, errors.As(err, &p), "%v", err)
	require.Equal(t, http.StatusTooManyRequests, p.Status)
	require.True(t, client.IsUnavailable(err))
}

// TestWebSocketEventsContextCloses: cancelling the stream's context ends
// Next with the context's error and closes the connection, whether Next is
// waiting or not.
func TestWebSocketEventsContextCloses(t *testing.T) {
	srv := newServer(t)
	p := newTCPProxy(t, srv.url)
	c := client.New(p.url(), tokAdmin)

	// Cancelled while Next waits.
	ctx, cancel := context.WithCancel(context.Background())
	st, err := c.WebSocketEvents(ctx, client.EventsRequest{})
	require.NoError(t, err)
	require.Equal(t, 1, p.open())
	errc := make(chan error, 1)
	go func() {
		_, err := st.Next()
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("Next did not return after the context ended")
	}
	testsupport.WaitFor(t, 10*time.Second, "the connection to close", func() bool { return p.open() == 0 })

	// Cancelled with no Next running.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	st, err = c.WebSocketEvents(ctx, client.EventsRequest{})
	require.NoError(t, err)
	require.Equal(t, 1, p.open())
	cancel()
	testsupport.WaitFor(t, 10*time.Second, "the connection to close", func() bool { return p.open() == 0 })
	_, err = st.Next()
	require.ErrorIs(t, err, context.Canceled)

	// Close while Next waits: Next ends, nothing reconnects.
	st, err = c.WebSocketEvents(context.Background(), client.EventsRequest{})
	require.NoError(t, err)
	go func() {
		_, err := st.Next()
		errc <- err
	}()
	require.NoError(t, st.Close())
	select {
	case err := <-errc:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("Next did not return after Close")
	}
	testsupport.WaitFor(t, 10*time.Second, "the connection to close", func() bool { return p.open() == 0 })
	accepted := len(p.lines())
	require.Equal(t, 3, accepted, "no reconnect after the end")
}
