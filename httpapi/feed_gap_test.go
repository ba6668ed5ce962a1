package httpapi

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSSEGapAfterTrim: a client resuming from a position whose following
// events were already trimmed is told so (event: gap), instead of silently
// missing them; a client resuming within the retained events is not.
func TestSSEGapAfterTrim(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.openSSE(t, "/v1/events", tokReader, "")
	old := c.lastID
	c.res.Body.Close()
	ts.put("s1", "x", 1)
	ts.put("s1", "x", 2)

	sawGap := func(lastID string) bool {
		rq, err := http.NewRequest("GET", ts.url+"/v1/events", nil)
		require.NoError(t, err)
		rq.Header.Set("Authorization", "Bearer "+tokReader)
		rq.Header.Set("Last-Event-ID", lastID)
		res, err := http.DefaultClient.Do(rq)
		require.NoError(t, err)
		defer res.Body.Close()
		checkHTTP(t, rq, nil, res, nil, true)
		require.Equal(t, 200, res.StatusCode)
		lines := make(chan string, 64)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(res.Body)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		deadline := time.After(3 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					return false
				}
				if l == "event: gap" {
					checkFeedMessage(t, "gap", []byte(strings.TrimPrefix(<-lines, "data: ")))
					return true
				}
				if strings.HasPrefix(l, "data: ") && !strings.Contains(l, "partitions") {
					checkFeedMessage(t, "", []byte(l[len("data: "):]))
					return false // the first event came without a gap
				}
			case <-deadline:
				return false
			}
		}
	}
	require.False(t, sawGap(old), "resuming within the retained events has no gap")

	// The persister trims behind itself; here the stream is trimmed by hand.
	p := ts.e.Partition("s1")
	require.NoError(t, ts.rdb.XTrimMaxLen(context.Background(), ts.e.StreamKey(p), 0).Err())
	ts.put("s1", "x", 3)
	require.True(t, sawGap(old), "resuming past trimmed events says so")
}

// TestSSEGapMovesPosition: the feed that reports a gap opens with the
// position after the gap (the streams' ends in the trimmed partitions), so
// a client that reconnects before any new event is not told of the same
// gap again; and a feed opened on a stream trimmed empty starts after its
// last entry, not before its first. Events after the gap still arrive.
func TestSSEGapMovesPosition(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	recv := func(c *sseClient) sseMsg {
		t.Helper()
		select {
		case m := <-c.events:
			return m
		case <-time.After(5 * time.Second):
			t.Fatal("no message within 5 s")
		}
		return sseMsg{}
	}
	c := ts.openSSE(t, "/v1/events?store=s1", tokReader, "")
	old := c.lastID
	c.res.Body.Close()
	ts.put("s1", "x", 1)
	p := ts.e.Partition("s1")
	require.NoError(t, ts.rdb.XTrimMaxLen(context.Background(), ts.e.StreamKey(p), 0).Err())

	g := ts.openSSE(t, "/v1/events?store=s1", tokReader, old)
	moved := g.lastID
	require.NotEqual(t, old, moved, "the opening id is past the gap")
	m := recv(g)
	require.Equal(t, "gap", m.event)
	g.res.Body.Close()

	// Reconnecting with the position the gap's feed sent: no second gap.
	r := ts.openSSE(t, "/v1/events?store=s1", tokReader, moved)
	require.Equal(t, moved, r.lastID)
	ts.put("s1", "x", 2)
	m = recv(r)
	require.Empty(t, m.event, "no gap after the moved position: %s", m.data)
	require.Contains(t, m.data, `"on_hand":2`)
	r.res.Body.Close()

	// A fresh feed on the emptied stream, then a reconnect with its
	// opening id: no gap either.
	require.NoError(t, ts.rdb.XTrimMaxLen(context.Background(), ts.e.StreamKey(p), 0).Err())
	f := ts.openSSE(t, "/v1/events?store=s1", tokReader, "")
	f.res.Body.Close()
	again := ts.openSSE(t, "/v1/events?store=s1", tokReader, f.lastID)
	ts.put("s1", "x", 3)
	m = recv(again)
	require.Empty(t, m.event, "a fresh feed's position on an emptied stream is not before its trim: %s", m.data)
	require.Contains(t, m.data, `"on_hand":3`)
}
