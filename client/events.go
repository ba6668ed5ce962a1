package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// errBadMessage is a message of the feed that does not decode.
var errBadMessage = errors.New("inventory API: event feed: a message does not decode")

// EventsRequest says which events to read.
type EventsRequest struct {
	// Store keeps the events of one store; "" reads every store the token
	// may see.
	Store string
	// LastEventID resumes the feed after this id (a FeedMessage.ID or
	// EventStream.LastEventID of an earlier stream); "" starts from now.
	LastEventID string
}

// EventStream reads the Server-Sent Events of GET /v1/events. When the
// connection breaks, Next reconnects with Last-Event-ID, so no event is
// lost or read twice (a gap in the server's retention comes as a message
// with Gap). It is not safe for concurrent use; Close it when done.
type EventStream struct {
	c      *Client
	ctx    context.Context
	cancel context.CancelFunc
	store  string
	lastID string
	body   io.ReadCloser
	rd     *bufio.Reader
	// watch ends the connection (connCancel) when the feed stays silent
	// (idle.go).
	watch      *idleWatch
	connCancel context.CancelFunc
}

// Events opens the event feed. Cancel ctx or call Close to end it.
func (c *Client) Events(ctx context.Context, req EventsRequest) (*EventStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	s := &EventStream{c: c, ctx: ctx, cancel: cancel, store: req.Store, lastID: req.LastEventID}
	if err := s.connect(); err != nil {
		cancel()
		return nil, err
	}
	return s, nil
}

// LastEventID is the feed position after the last message read: give it
// as EventsRequest.LastEventID to resume there in a new stream.
func (s *EventStream) LastEventID() string { return s.lastID }

// Close ends the stream.
func (s *EventStream) Close() error {
	s.cancel()
	s.endConn()
	if s.body != nil {
		return s.body.Close()
	}
	return nil
}

// endConn stops the idle watch and ends the connection's context.
func (s *EventStream) endConn() {
	s.watch.done()
	if s.connCancel != nil {
		s.connCancel()
		s.connCancel = nil
	}
}

func (s *EventStream) connect() error {
	q := url.Values{}
	if s.store != "" {
		q.Set("store", s.store)
	}
	hdr := http.Header{"Accept": {"text/event-stream"}}
	if s.lastID != "" {
		hdr.Set("Last-Event-ID", s.lastID)
	}
	// The connection's own context: cancelling it aborts a read that
	// waits on a silent connection.
	cctx, ccancel := context.WithCancel(s.ctx)
	res, err := s.c.send(cctx, http.MethodGet, "/v1/events", q, nil, hdr, nil)
	if err != nil {
		ccancel()
		return err
	}
	if res.StatusCode != http.StatusOK {
		defer ccancel()
		defer res.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		return problemFrom(&response{status: res.StatusCode, header: res.Header, body: b})
	}
	s.body = res.Body
	// A feed silent past the idle timeout has its connection ended, so the
	// read fails and Next reconnects from the last position.
	s.connCancel = ccancel
	s.watch = newIdleWatch(s.c.feedIdle, ccancel)
	s.rd = bufio.NewReader(watchedReader{r: res.Body, w: s.watch})
	return nil
}

// Next returns the next message: an event, or a gap. It blocks until one
// comes, the context ends or the stream is closed; a broken connection is
// reopened from LastEventID, up to the client's max attempts in a row.
func (s *EventStream) Next() (FeedMessage, error) {
	failures := 0
	for {
		m, err := s.read()
		if err == nil {
			return m, nil
		}
		if s.ctx.Err() != nil {
			return FeedMessage{}, s.ctx.Err()
		}
		var p *Problem
		if errors.As(err, &p) || errors.Is(err, errBadMessage) {
			return FeedMessage{}, err
		}
		failures++
		if failures >= s.c.maxAttempts {
			return FeedMessage{}, fmt.Errorf("inventory API: event feed: %w", err)
		}
		s.endConn()
		if s.body != nil {
			s.body.Close()
			s.body, s.rd = nil, nil
		}
		t := time.NewTimer(s.c.backoff(failures))
		select {
		case <-s.ctx.Done():
			t.Stop()
			return FeedMessage{}, s.ctx.Err()
		case <-t.C:
		}
		if err := s.connect(); err != nil {
			var p *Problem
			if errors.As(err, &p) || s.ctx.Err() != nil {
				return FeedMessage{}, err
			}
		}
	}
}

// read parses messages until one carries data.
func (s *EventStream) read() (FeedMessage, error) {
	if s.rd == nil {
		return FeedMessage{}, io.ErrUnexpectedEOF
	}
	var (
		typ  string
		data strings.Builder
		id   *string
	)
	for {
		line, err := s.rd.ReadString('\n')
		if err != nil {
			return FeedMessage{}, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			// The end of a message: its id is the position after it, even
			// with no data.
			if id != nil {
				s.lastID = *id
			}
			if data.Len() == 0 {
				typ, id = "", nil
				continue
			}
			m := FeedMessage{ID: s.lastID}
			switch typ {
			case "gap":
				m.Gap = &FeedGap{}
				if err := json.Unmarshal([]byte(data.String()), m.Gap); err != nil {
					return FeedMessage{}, fmt.Errorf("%w: a gap: %v", errBadMessage, err)
				}
			case "", "message":
				m.Event = &Event{}
				if err := json.Unmarshal([]byte(data.String()), m.Event); err != nil {
					return FeedMessage{}, fmt.Errorf("%w: an event: %v", errBadMessage, err)
				}
			default:
				// A message type this client does not know: skip it.
				typ, id = "", nil
				data.Reset()
				continue
			}
			return m, nil
		}
		if strings.HasPrefix(line, ":") {
			continue // a comment: the heartbeat
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			typ = value
		case "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(value)
		case "id":
			v := value
			id = &v
		}
	}
}
