package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// wsReadLimit bounds one message of the WebSocket feed: an event is a few
// hundred bytes, its texts at most a few KiB.
const wsReadLimit = 1 << 20

// WebSocketStream reads the event feed of GET /v1/ws: the same messages as
// EventStream, over one WebSocket. When the connection breaks (or the
// server closes it, as it does when it shuts down), Next reconnects with
// ?last_event_id= set to LastEventID, so no event is lost or read twice; a
// gap in the server's retention comes as a message with Gap. Cancelling
// the context given to WebSocketEvents closes the connection. It is not
// safe for concurrent use, but Close may be called from any goroutine.
type WebSocketStream struct {
	c      *Client
	ctx    context.Context
	cancel context.CancelFunc
	store  string
	lastID string
	// pending is a message read while connecting (the gap, or the first
	// event of a server that sends no opening position), for Next.
	pending *FeedMessage

	mu     sync.Mutex
	conn   *websocket.Conn // nil while disconnected
	closed bool            // Close was called
	// watch closes conn when a read waits past the idle timeout with
	// nothing arriving, not even the server's ping (idle.go).
	watch *idleWatch
	stop  func() bool // ends the context watch
}

// WebSocketEvents opens the event feed over WebSocket (GET /v1/ws), with
// the token in the Authorization header. It returns once the server has
// given the feed's position, so LastEventID resumes from there even if no
// event comes before the connection breaks. A refused handshake is a
// *Problem (401, 403, 400 for a malformed LastEventID; 429 and 503 are
// retried first, honouring Retry-After, like any call). Cancel ctx or call
// Close to end the stream.
func (c *Client) WebSocketEvents(ctx context.Context, req EventsRequest) (*WebSocketStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	s := &WebSocketStream{c: c, ctx: ctx, cancel: cancel, store: req.Store, lastID: req.LastEventID}
	s.stop = context.AfterFunc(ctx, s.closeConn)
	if err := s.dial(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// LastEventID is the feed position after the last message read: give it
// as EventsRequest.LastEventID to resume there in a new stream (of either
// kind: the two feeds share their positions).
func (s *WebSocketStream) LastEventID() string { return s.lastID }

// Close ends the stream, closing its connection with the WebSocket close
// handshake. Closing twice is harmless.
func (s *WebSocketStream) Close() error {
	s.stop()
	s.mu.Lock()
	conn := s.conn
	s.conn, s.closed = nil, true
	s.watch.done()
	s.mu.Unlock()
	var err error
	if conn != nil {
		err = conn.Close(websocket.StatusNormalClosure, "")
	}
	s.cancel()
	return err
}

// closeConn drops the connection at once: the context ended.
func (s *WebSocketStream) closeConn() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		_ = s.conn.CloseNow()
		s.conn = nil
	}
	s.watch.done()
}

// ended returns the reason the stream ended (its context's error; Close
// cancels it), or nil while it runs.
func (s *WebSocketStream) ended() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return context.Canceled
	}
	return s.ctx.Err()
}

// current returns the open connection, or nil.
func (s *WebSocketStream) current() *websocket.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn
}

// dial opens a connection from lastID, retrying transport errors, 429 and
// 503 as the client's calls do, and reads the feed's first message.
func (s *WebSocketStream) dial() error {
	for attempt := 1; ; attempt++ {
		err := s.connect()
		if err == nil {
			return nil
		}
		if e := s.ended(); e != nil {
			return fmt.Errorf("inventory API: event feed: %w", e)
		}
		wait := s.c.backoff(attempt)
		var p *Problem
		if errors.As(err, &p) {
			if p.Status != http.StatusServiceUnavailable && p.Status != http.StatusTooManyRequests {
				return err
			}
			if p.RetryAfter > 0 {
				wait = min(p.RetryAfter, s.c.backoffCap)
			}
		} else if errors.Is(err, errBadMessage) {
			return err
		}
		if attempt >= s.c.maxAttempts {
			if p != nil {
				return err
			}
			return fmt.Errorf("inventory API: event feed: %w", err)
		}
		if err := s.sleep(wait); err != nil {
			return err
		}
	}
}

// connect makes one attempt: the handshake, then the first message.
func (s *WebSocketStream) connect() error {
	q := url.Values{}
	if s.store != "" {
		q.Set("store", s.store)
	}
	if s.lastID != "" {
		q.Set("last_event_id", s.lastID)
	}
	u := s.c.base + "/v1/ws"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	hdr := http.Header{}
	if s.c.token != "" {
		hdr.Set("Authorization", "Bearer "+s.c.token)
	}
	// The server pings every heartbeat; a ping, like a message, shows the
	// connection alive. The watch is set before the first read, which is
	// where the library calls OnPingReceived.
	var watch *idleWatch
	conn, res, err := websocket.Dial(s.ctx, u, &websocket.DialOptions{HTTPClient: s.c.hc, HTTPHeader: hdr,
		OnPingReceived: func(context.Context, []byte) bool {
			watch.wait()
			return true
		}})
	if err != nil {
		if res != nil && res.StatusCode != http.StatusSwitchingProtocols {
			// The library keeps the first KiB of the body: enough for a
			// problem, else the Problem is made of the status.
			b, _ := io.ReadAll(res.Body)
			return problemFrom(&response{status: res.StatusCode, header: res.Header, body: b})
		}
		return err
	}
	conn.SetReadLimit(wsReadLimit)
	s.mu.Lock()
	if s.closed || s.ctx.Err() != nil {
		s.mu.Unlock()
		_ = conn.CloseNow()
		return context.Canceled
	}
	s.conn = conn
	s.watch.done()
	watch = newIdleWatch(s.c.feedIdle, func() { _ = conn.CloseNow() })
	s.watch = watch
	s.mu.Unlock()
	// The server opens every feed with its position (or the gap); until it
	// is read, a reconnect would start over from lastID.
	m, position, err := s.read(conn)
	if err != nil {
		s.drop(conn)
		return err
	}
	if !position {
		s.pending = &m
	}
	return nil
}

// drop closes conn if it is still the stream's connection.
func (s *WebSocketStream) drop(conn *websocket.Conn) {
	s.mu.Lock()
	if s.conn == conn {
		s.conn = nil
		s.watch.done()
	}
	s.mu.Unlock()
	_ = conn.CloseNow()
}

// Next returns the next message: an event, or a gap. It blocks until one
// comes, the context ends or the stream is closed; a broken connection is
// reopened from LastEventID, up to the client's max attempts in a row. A
// *Problem (the token refused on a reconnect, say) and a message that does
// not decode end the stream.
func (s *WebSocketStream) Next() (FeedMessage, error) {
	if m := s.pending; m != nil {
		s.pending = nil
		return *m, nil
	}
	failures := 0
	for {
		var err error
		if conn := s.current(); conn != nil {
			var m FeedMessage
			var position bool
			if m, position, err = s.read(conn); err == nil {
				if position {
					continue
				}
				return m, nil
			}
			s.drop(conn)
			if errors.Is(err, errBadMessage) {
				return FeedMessage{}, err
			}
		} else {
			err = errors.New("not connected")
		}
		if e := s.ended(); e != nil {
			return FeedMessage{}, e
		}
		// The connection broke, or the server closed it: open another from
		// the last position.
		failures++
		if failures >= s.c.maxAttempts {
			return FeedMessage{}, fmt.Errorf("inventory API: event feed: %w", err)
		}
		if s.sleep(s.c.backoff(failures)) != nil {
			return FeedMessage{}, s.ended()
		}
		if err := s.dial(); err != nil {
			if e := s.ended(); e != nil {
				return FeedMessage{}, e
			}
			return FeedMessage{}, err
		}
		if m := s.pending; m != nil {
			s.pending = nil
			return *m, nil
		}
	}
}

// wsMessage is one message of the feed as the server sends it.
type wsMessage struct {
	ID    string          `json:"id"`
	Event json.RawMessage `json:"event"`
	Gap   json.RawMessage `json:"gap"`
}

// read reads one message from conn and moves the position past it.
// position is true for a message that carries the position alone.
func (s *WebSocketStream) read(conn *websocket.Conn) (m FeedMessage, position bool, err error) {
	s.mu.Lock()
	watch := s.watch
	s.mu.Unlock()
	watch.wait()
	typ, b, err := conn.Read(s.ctx)
	watch.done()
	if err != nil {
		return FeedMessage{}, false, err
	}
	if typ != websocket.MessageText {
		return FeedMessage{}, false, fmt.Errorf("%w: a binary message", errBadMessage)
	}
	var w wsMessage
	if err := json.Unmarshal(b, &w); err != nil {
		return FeedMessage{}, false, fmt.Errorf("%w: %v", errBadMessage, err)
	}
	if strings.TrimSpace(w.ID) == "" {
		return FeedMessage{}, false, fmt.Errorf("%w: a message without an id", errBadMessage)
	}
	m = FeedMessage{ID: w.ID}
	switch {
	case len(w.Gap) > 0 && !bytes.Equal(w.Gap, []byte("null")):
		m.Gap = &FeedGap{}
		if err := json.Unmarshal(w.Gap, m.Gap); err != nil {
			return FeedMessage{}, false, fmt.Errorf("%w: a gap: %v", errBadMessage, err)
		}
	case len(w.Event) > 0 && !bytes.Equal(w.Event, []byte("null")):
		m.Event = &Event{}
		if err := json.Unmarshal(w.Event, m.Event); err != nil {
			return FeedMessage{}, false, fmt.Errorf("%w: an event: %v", errBadMessage, err)
		}
	default:
		position = true
	}
	s.lastID = w.ID
	return m, position, nil
}

// sleep waits d, or returns the context's error when it ends first.
func (s *WebSocketStream) sleep(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return fmt.Errorf("inventory API: event feed: %w", s.ctx.Err())
	case <-t.C:
		return nil
	}
}
