package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

// sseClient reads one SSE connection.
type sseClient struct {
	res    *http.Response
	events chan sseMsg
	lastID string
}

type sseMsg struct {
	id    string
	event string // "" for an event, "gap"
	data  string
}

func (ts *testServer) openSSE(t *testing.T, path, token, lastID string) *sseClient {
	t.Helper()
	rq, err := http.NewRequest("GET", ts.url+path, nil)
	require.NoError(t, err)
	rq.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		rq.Header.Set("Last-Event-ID", lastID)
	}
	res, err := http.DefaultClient.Do(rq)
	require.NoError(t, err)
	checkHTTP(t, rq, nil, res, nil, true)
	require.Equal(t, 200, res.StatusCode)
	require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	c := &sseClient{res: res, events: make(chan sseMsg, 100)}
	ready := make(chan string, 1)
	go func() {
		defer close(c.events)
		sc := bufio.NewScanner(res.Body)
		var m sseMsg
		first := true
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if first && m.id != "" {
					ready <- m.id
					first = false
				} else if m.data != "" {
					c.events <- m
				}
				m = sseMsg{}
			case strings.HasPrefix(line, "id: "):
				m.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				m.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				m.data = line[6:]
			}
		}
	}()
	select {
	case c.lastID = <-ready:
	case <-time.After(5 * time.Second):
		t.Fatal("no opening id")
	}
	t.Cleanup(func() { res.Body.Close() })
	return c
}

func (c *sseClient) next(t *testing.T) (string, engine.Event) {
	t.Helper()
	select {
	case m, ok := <-c.events:
		require.True(t, ok, "stream ended")
		require.NotEmpty(t, m.id, "every event has an id")
		checkFeedMessage(t, m.event, []byte(m.data))
		var ev engine.Event
		require.NoError(t, json.Unmarshal([]byte(m.data), &ev))
		c.lastID = m.id
		return m.id, ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return "", engine.Event{}
}

func (c *sseClient) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case m, ok := <-c.events:
		if ok {
			t.Fatalf("unexpected event %s", m.data)
		}
	case <-time.After(d):
	}
}

func TestSSE(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.put("s1", "lamp", 5) // before the feed: not sent
	all := ts.openSSE(t, "/v1/events", tokReader, "")
	s2 := ts.openSSE(t, "/v1/events?store=s2", tokReader, "")

	require.Equal(t, 200, ts.req("POST", "/v1/stores/s1/items/lamp/adjust", tokAdmin, `{"delta":1}`).Status)
	ts.put("s2", "lamp", 7)
	_, ev := all.next(t)
	require.Equal(t, "ADJUST", ev.Type)
	require.Equal(t, "s1", ev.Store)
	require.Equal(t, int64(2), ev.Version)
	require.Equal(t, int64(6), ev.OnHand)
	require.Equal(t, int64(1), ev.DeltaOnHand)
	_, ev = all.next(t)
	require.Equal(t, "SET", ev.Type)
	require.Equal(t, "s2", ev.Store)
	_, ev = s2.next(t)
	require.Equal(t, "s2", ev.Store, "the store filter")
	s2.none(t, 100*time.Millisecond)

	// Disconnect, change while away, resume: exactly the missed events.
	resume := all.lastID
	all.res.Body.Close()
	require.Equal(t, 200, ts.req("POST", "/v1/stores/s1/items/lamp/adjust", tokAdmin, `{"delta":2}`).Status)
	ts.put("s2", "lamp", 8)
	ts.put("s3", "lamp", 1)
	back := ts.openSSE(t, "/v1/events", tokReader, resume)
	got := map[string]int64{}
	for i := 0; i < 3; i++ {
		_, ev := back.next(t)
		got[ev.Store] = ev.Version
	}
	require.Equal(t, map[string]int64{"s1": 3, "s2": 2, "s3": 1}, got)
	back.none(t, 150*time.Millisecond)

	// A store token follows its own store only.
	own := ts.openSSE(t, "/v1/events", tokS1, "")
	ts.put("s2", "lamp", 9)
	ts.put("s1", "lamp", 9)
	_, ev = own.next(t)
	require.Equal(t, "s1", ev.Store)
}

func TestSSEResumeBeforeFirstEvent(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.openSSE(t, "/v1/events", tokReader, "")
	opening := c.lastID
	c.res.Body.Close()
	ts.put("s1", "x", 1)
	back := ts.openSSE(t, "/v1/events", tokReader, opening)
	_, ev := back.next(t)
	require.Equal(t, "x", ev.SKU, "the opening id resumes without loss")
}

func TestWebSocket(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(ts.url, "http") + "/v1/ws?store=s1"
	_, res, err := websocket.Dial(ctx, wsURL, nil)
	require.Error(t, err, "no token")
	if res != nil {
		require.Equal(t, 401, res.StatusCode)
		b, _ := io.ReadAll(res.Body)
		checkHTTP(t, httptest.NewRequest("GET", wsURL, nil), nil, res, b, false)
	}
	hdr := http.Header{"Authorization": {"Bearer " + tokReader}}
	conn, res, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: hdr})
	require.NoError(t, err)
	require.Equal(t, 101, res.StatusCode)
	checkHTTP(t, httptest.NewRequest("GET", wsURL, nil), nil, res, nil, true)
	defer conn.CloseNow()
	var m struct {
		ID    string          `json:"id"`
		Event engine.Event    `json:"event"`
		Gap   *map[string]any `json:"gap"`
	}
	// The feed opens with its position alone.
	_, b, err := conn.Read(ctx)
	require.NoError(t, err)
	checkFeedMessage(t, "ws", b)
	require.NoError(t, json.Unmarshal(b, &m))
	require.NotEmpty(t, m.ID)
	require.Empty(t, m.Event.Store)
	require.Nil(t, m.Gap)
	opening := m.ID
	ts.put("s2", "lamp", 1)
	ts.put("s1", "lamp", 2)
	_, b, err = conn.Read(ctx)
	require.NoError(t, err)
	checkFeedMessage(t, "ws", b)
	require.NoError(t, json.Unmarshal(b, &m))
	require.NotEmpty(t, m.ID)
	require.Equal(t, "s1", m.Event.Store)
	require.Equal(t, "SET", m.Event.Type)
	conn.Close(websocket.StatusNormalClosure, "")

	// Resume after a change made while disconnected.
	resumed := m.ID
	ts.put("s1", "lamp", 3)
	conn, _, err = websocket.Dial(ctx, wsURL+"&last_event_id="+m.ID+"&access_token="+tokReader, nil)
	require.NoError(t, err, "browsers pass the token as access_token")
	defer conn.CloseNow()
	_, b, err = conn.Read(ctx)
	require.NoError(t, err)
	checkFeedMessage(t, "ws", b)
	require.NoError(t, json.Unmarshal(b, &m))
	require.Equal(t, resumed, m.ID, "a resumed feed opens at the position given")
	_, b, err = conn.Read(ctx)
	require.NoError(t, err)
	checkFeedMessage(t, "ws", b)
	require.NoError(t, json.Unmarshal(b, &m))
	require.Equal(t, int64(3), m.Event.OnHand)
	require.Equal(t, int64(2), m.Event.Version)
	conn.Close(websocket.StatusNormalClosure, "")

	// The opening position resumes a feed that got no event: the change
	// made after it comes first.
	ts.put("s1", "desk", 1)
	conn, _, err = websocket.Dial(ctx, wsURL+"&last_event_id="+opening, &websocket.DialOptions{HTTPHeader: hdr})
	require.NoError(t, err)
	defer conn.CloseNow()
	for _, want := range []string{"", "lamp", "lamp", "desk"} {
		_, b, err = conn.Read(ctx)
		require.NoError(t, err)
		m.Event = engine.Event{}
		require.NoError(t, json.Unmarshal(b, &m))
		require.Equal(t, want, m.Event.SKU)
	}

	r := ts.req("GET", "/v1/ws", tokReader, "")
	requireProblem(t, r, 426)
}

// TestSSEQuietFeed keeps a feed open past the write timeout with nothing to
// send but heartbeats, then still delivers.
func TestSSEQuietFeed(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.WriteTimeout = 200 * time.Millisecond; c.Heartbeat = 500 * time.Millisecond })
	c := ts.openSSE(t, "/v1/events", tokReader, "")
	c.none(t, 1200*time.Millisecond)
	ts.put("s1", "late", 1)
	_, ev := c.next(t)
	require.Equal(t, "late", ev.SKU)
}
