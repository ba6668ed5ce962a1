package httpapi

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/internal/testsupport"
)

// rawFeed opens a feed over a bare TCP connection and reads up to its first
// message (SSE) or the handshake (WebSocket), then leaves the connection to
// the test: to close, reset, or stop reading.
func (ts *testServer) rawFeed(t *testing.T, path, token string, ws bool) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	require.NoError(t, err)
	conn := c.(*net.TCPConn)
	t.Cleanup(func() { conn.Close() })
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n", path, token)
	if ws {
		key := make([]byte, 16)
		_, _ = rand.Read(key)
		req += "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key) + "\r\n"
	}
	_, err = conn.Write([]byte(req + "\r\n"))
	require.NoError(t, err)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	rq, _ := parseRaw(t, req+"\r\n")
	checkHTTP(t, rq, nil, res, nil, true)
	if ws {
		require.Equal(t, http.StatusSwitchingProtocols, res.StatusCode)
	} else {
		require.Equal(t, http.StatusOK, res.StatusCode)
		// The opening id-only message: the feed is running.
		line, err := br.ReadString('\n')
		require.NoError(t, err)
		require.NotEmpty(t, strings.TrimSpace(line))
	}
	_ = conn.SetReadDeadline(time.Time{})
	return conn
}

// waitFeeds polls until n feed slots are taken, or fails after d.
func (ts *testServer) waitFeeds(t *testing.T, n int64, d time.Duration) {
	t.Helper()
	if !testsupport.Poll(d, func() bool { return ts.s.streams.Load() == n }) {
		t.Fatalf("%d feed slots taken after %s, want %d", ts.s.streams.Load(), d, n)
	}
}

// TestFeedSlotFreedWhenClientVanishes: a feed whose client closes or resets
// its connection gives its slot back within seconds, even when the next
// heartbeat is a minute away.
func TestFeedSlotFreedWhenClientVanishes(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.Heartbeat = time.Minute; c.WriteTimeout = time.Second })
	for _, ws := range []bool{false, true} {
		path := "/v1/events"
		if ws {
			path = "/v1/ws"
		}
		closed := ts.rawFeed(t, path, tokReader, ws)
		reset := ts.rawFeed(t, path, tokReader, ws)
		kept := ts.rawFeed(t, path, tokAdmin, ws)
		ts.waitFeeds(t, 3, 5*time.Second)
		require.NoError(t, closed.Close())
		ts.waitFeeds(t, 2, 5*time.Second)
		require.NoError(t, reset.SetLinger(0)) // close with RST
		require.NoError(t, reset.Close())
		ts.waitFeeds(t, 1, 5*time.Second)
		require.NoError(t, kept.Close())
		ts.waitFeeds(t, 0, 5*time.Second)
	}
}

// TestFeedSlotFreedWhenClientStopsReading: a feed whose client stays
// connected but stops reading gives its slot back once a write stalls past
// the write timeout (SSE) or a ping goes unanswered (WebSocket).
func TestFeedSlotFreedWhenClientStopsReading(t *testing.T) {
	t.Parallel()
	t.Run("sse", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t, func(c *Config) { c.WriteTimeout = time.Second })
		conn := ts.rawFeed(t, "/v1/events", tokReader, false)
		require.NoError(t, conn.SetReadBuffer(4096))
		ts.waitFeeds(t, 1, 5*time.Second)
		// Events pile up unread until the server's write stalls.
		reason := strings.Repeat("r", 250)
		var b strings.Builder
		b.WriteString(`{"updates":[`)
		for i := 0; i < 500; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"store":"s%d","sku":"lamp","delta":1,"reason":%q}`, i%50, reason)
		}
		b.WriteString(`]}`)
		for i := 0; i < 50; i++ {
			ts.put(fmt.Sprintf("s%d", i), "lamp", 1)
		}
		testsupport.WaitFor(t, 30*time.Second, "the stalled feed to give its slot back", func() bool {
			if ts.s.streams.Load() == 0 {
				return true
			}
			require.Equal(t, 200, ts.req("POST", "/v1/adjustments", tokAdmin, b.String()).Status)
			return false
		})
	})
	t.Run("websocket", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t, func(c *Config) { c.WriteTimeout = time.Second; c.Heartbeat = 200 * time.Millisecond })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		wsURL := "ws" + strings.TrimPrefix(ts.url, "http") + "/v1/ws"
		conn, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tokReader}}})
		require.NoError(t, err)
		defer conn.CloseNow()
		// Never reading, the client answers no ping.
		ts.waitFeeds(t, 1, 5*time.Second)
		ts.waitFeeds(t, 0, 5*time.Second)
	})
}

// TestFeedShare: one token holds at most its share of the feed slots (429
// beyond it) while another token still gets a feed; past the whole cap
// every token gets 503.
func TestFeedShare(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.MaxStreams = 4 })
	require.Equal(t, 2, ts.s.cfg.MaxStreamsPerToken, "half of the cap by default")
	first := ts.rawFeed(t, "/v1/events", tokReader, false)
	ts.rawFeed(t, "/v1/ws", tokReader, true)
	ts.waitFeeds(t, 2, 5*time.Second)

	for _, path := range []string{"/v1/events", "/v1/ws"} {
		r := ts.req("GET", path, tokReader, "", "Connection", "Upgrade", "Upgrade", "websocket",
			"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		p := requireProblem(t, r, http.StatusTooManyRequests)
		require.Equal(t, ProblemTypeBase+"too-many-feeds", p["type"])
		require.Contains(t, p["detail"], "2")
	}
	// Another token still gets a feed; the two fill the cap.
	ts.rawFeed(t, "/v1/events", tokAdmin, false)
	ts.rawFeed(t, "/v1/events", tokAdmin, false)
	ts.waitFeeds(t, 4, 5*time.Second)
	p := requireProblem(t, ts.req("GET", "/v1/events", tokS1, ""), http.StatusServiceUnavailable)
	require.Equal(t, ProblemTypeBase+"unavailable", p["type"])

	// A slot given back is the token's again.
	require.NoError(t, first.Close())
	ts.waitFeeds(t, 3, 5*time.Second)
	ts.rawFeed(t, "/v1/events", tokReader, false)
	ts.waitFeeds(t, 4, 5*time.Second)
}

func TestFeedShareConfig(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, tc := range []struct{ max, per, want int }{{0, 0, 256}, {1, 0, 1}, {3, 0, 1}, {10, 10, 10}, {10, 3, 3}} {
		s, err := New(Config{Engine: ts.e, Keys: testKeys(t), MaxStreams: tc.max, MaxStreamsPerToken: tc.per})
		require.NoError(t, err)
		require.Equal(t, tc.want, s.cfg.MaxStreamsPerToken, "%+v", tc)
	}
	_, err := New(Config{Engine: ts.e, Keys: testKeys(t), MaxStreams: 10, MaxStreamsPerToken: 11})
	require.ErrorContains(t, err, "MaxStreamsPerToken")
	_, err = New(Config{Engine: ts.e, Keys: testKeys(t), MaxStreamsPerToken: -1})
	require.ErrorContains(t, err, "MaxStreamsPerToken")
}
