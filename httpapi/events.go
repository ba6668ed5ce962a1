package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/shelfline/inventory/engine"
	"go.uber.org/zap"
)

const feedBatch = 200

// feedFor authorises a feed request, takes a feed slot and starts its feed.
// A store token follows only its own store. The caller must call release
// when the feed ends (or did not start).
func (s *Server) feedFor(c *fiber.Ctx, lastID string) (f *feed, release func(), err error) {
	cl := callerOf(c)
	store := utils.CopyString(c.Query("store"))
	if store != "" {
		if err := engine.ValidateStore(store); err != nil {
			return nil, nil, err
		}
	}
	if cl.Role == RoleStore {
		if store == "" {
			store = cl.Store
		}
		if err := cl.mustRead(store); err != nil {
			return nil, nil, err
		}
	}
	free, err := s.slots.acquire(cl.principal)
	if err != nil {
		limit := "feeds"
		if p := (*Problem)(nil); errors.As(err, &p) && p.Status == http.StatusTooManyRequests {
			limit = "feeds_per_token"
		}
		s.m.shed.WithLabelValues(limit).Inc()
		return nil, nil, err
	}
	s.streams.Add(1)
	var once sync.Once
	release = func() { once.Do(func() { free(); s.streams.Add(-1) }) }
	ctx, cancel := s.ctx(c)
	defer cancel()
	f, err = newFeed(ctx, s.e, store, utils.CopyString(lastID))
	if err != nil {
		release()
		return nil, nil, err
	}
	return f, release, nil
}

// sse serves GET /v1/events as Server-Sent Events.
func (s *Server) sse(c *fiber.Ctx) error {
	lastID := c.Get("Last-Event-ID")
	if lastID == "" {
		lastID = c.Query("last_event_id")
	}
	f, release, err := s.feedFor(c, lastID)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no")
	// The connection ends with the feed: nothing follows it on this
	// connection, so the server may watch it for the client going away.
	c.Context().SetConnectionClose()
	conn := c.Context().Conn()
	log := s.logger(c)
	s.feeds.Add(1)
	c.Status(http.StatusOK).Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer s.feeds.Done()
		defer release()
		s.runSSE(f, log, conn, w, watchGone(conn))
	})
	return nil
}

// watchGone returns a channel closed when the client of an SSE feed closes
// or resets its connection. An SSE client sends nothing after its request,
// so the server reads the connection only to see it end: a feed whose
// client vanished frees its slot at once, not at its next failed write.
// The watch ends when the connection is closed, which the server does when
// the feed ends (the response says Connection: close).
func watchGone(conn net.Conn) <-chan struct{} {
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		buf := make([]byte, 512)
		for {
			// The server's read timeouts were for the request; the feed
			// waits on its client for as long as the feed runs.
			_ = conn.SetReadDeadline(time.Time{})
			if _, err := conn.Read(buf); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				return
			}
		}
	}()
	return gone
}

func (s *Server) runSSE(f *feed, log *zap.Logger, conn net.Conn, w *bufio.Writer, gone <-chan struct{}) {
	flush := func() bool {
		_ = conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		return w.Flush() == nil
	}
	// The id-only message sets the client's Last-Event-ID at once, so a
	// reconnect before the first event still resumes from here.
	fmt.Fprintf(w, "retry: 2000\nid: %s\n\n", f.ID())
	if len(f.gaps) > 0 {
		// The position is older than the retained events of these
		// partitions: say so, so the client reloads what it shows.
		b, _ := json.Marshal(gapMessage(f.gaps))
		fmt.Fprintf(w, "event: gap\ndata: %s\n\n", b)
	}
	if !flush() {
		return
	}
	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	for {
		// Subscribe before reading, so a change during the read wakes us.
		wake := s.notify.changed()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
			evs, err := f.poll(ctx, feedBatch)
			cancel()
			if err != nil {
				log.Warn("event feed poll", zapErr(err))
				break
			}
			for _, fe := range evs {
				b, _ := json.Marshal(fe.Event)
				fmt.Fprintf(w, "id: %s\ndata: %s\n\n", fe.ID, b)
			}
			if len(evs) == 0 {
				break
			}
			if !flush() {
				return
			}
		}
		select {
		case <-s.done:
			return
		case <-gone:
			return
		case <-wake:
		case <-heartbeat.C:
			fmt.Fprintf(w, ": ping\n\n")
			if !flush() {
				return
			}
		}
	}
}

// wsMessage is one message of the WebSocket feed: an event, a gap or (the
// first message, with neither) the position alone, with the feed position
// after it (send it back as ?last_event_id= to resume).
type wsMessage struct {
	ID    string `json:"id"`
	Event any    `json:"event,omitempty"`
	// Gap, on the first message of a resumed feed, says which partitions'
	// events after the position were already trimmed.
	Gap any `json:"gap,omitempty"`
}

// gapMessage describes the partitions a resumed feed missed events in.
func gapMessage(parts []int) map[string]any {
	return map[string]any{"partitions": parts,
		"detail": "events after Last-Event-ID were already trimmed in these partitions (older than the retention window); reload the state you show"}
}

// websocket serves GET /v1/ws: the same feed as /v1/events, one JSON
// message per event. ?store= filters; ?last_event_id= resumes.
func (s *Server) websocket(c *fiber.Ctx) error {
	if !c.Context().Request.Header.ConnectionUpgrade() {
		return problem(http.StatusUpgradeRequired, "upgrade-required", "this route speaks WebSocket only").with("upgrade", "websocket")
	}
	f, release, err := s.feedFor(c, c.Query("last_event_id"))
	if err != nil {
		return err
	}
	// Build the net/http view of the handshake before Fiber recycles the
	// request, then take over the connection.
	req, err := http.NewRequest(http.MethodGet, "http://"+utils.CopyString(c.Hostname())+"/v1/ws", nil)
	if err != nil {
		release()
		return err
	}
	req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.1", 1, 1
	c.Request().Header.VisitAll(func(k, v []byte) { req.Header.Add(string(k), string(v)) })
	log, id := s.logger(c), s.request(c).id
	s.feeds.Add(1)
	c.Context().HijackSetNoResponse(true)
	c.Context().Hijack(func(conn net.Conn) {
		defer s.feeds.Done()
		defer release()
		// The handshake's response is written here, not by Fiber: it
		// echoes the request's id itself.
		rw := &hijackWriter{conn: conn, h: http.Header{}}
		rw.h.Set(HeaderRequestID, id)
		// Any origin may connect: the feed authenticates by bearer token
		// (header or access_token), never by cookie, so a foreign page
		// gains nothing it could not get with the token itself.
		ws, err := websocket.Accept(rw, req, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			log.Debug("websocket handshake", zapErr(err))
			return
		}
		s.runWS(f, log, ws)
	})
	return nil
}

func (s *Server) runWS(f *feed, log *zap.Logger, ws *websocket.Conn) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx = ws.CloseRead(ctx) // we only send; this answers pings and closes
	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	// The first message gives the feed's position, as the SSE feed's
	// id-only message does, so a client that reconnects before the first
	// event still resumes from here; on a feed resumed past trimmed events
	// it is the gap, whose id is the position after it.
	first := wsMessage{ID: f.ID()}
	if len(f.gaps) > 0 {
		first.Gap = gapMessage(f.gaps)
	}
	b, _ := json.Marshal(first)
	wctx, wcancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	err := ws.Write(wctx, websocket.MessageText, b)
	wcancel()
	if err != nil {
		return
	}
	for {
		wake := s.notify.changed()
		for {
			pctx, pcancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
			evs, err := f.poll(pctx, feedBatch)
			pcancel()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				log.Warn("event feed poll", zap.Error(err))
				break
			}
			for _, fe := range evs {
				b, _ := json.Marshal(wsMessage{ID: fe.ID, Event: fe.Event})
				wctx, wcancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
				err := ws.Write(wctx, websocket.MessageText, b)
				wcancel()
				if err != nil {
					return
				}
			}
			if len(evs) == 0 {
				break
			}
		}
		select {
		case <-s.done:
			ws.Close(websocket.StatusGoingAway, "server shutting down")
			return
		case <-ctx.Done():
			return
		case <-wake:
		case <-heartbeat.C:
			pctx, pcancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
			err := ws.Ping(pctx)
			pcancel()
			if err != nil {
				return
			}
		}
	}
}

// hijackWriter is the http.ResponseWriter the WebSocket handshake writes to:
// it writes the status line and headers straight to the hijacked connection.
type hijackWriter struct {
	conn    net.Conn
	h       http.Header
	written bool
}

func (w *hijackWriter) Header() http.Header { return w.h }

func (w *hijackWriter) WriteHeader(code int) {
	if w.written {
		return
	}
	w.written = true
	bw := bufio.NewWriter(w.conn)
	fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\n", code, http.StatusText(code))
	_ = w.h.Write(bw)
	bw.WriteString("\r\n")
	_ = bw.Flush()
}

func (w *hijackWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.conn.Write(b)
}

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.conn, bufio.NewReadWriter(bufio.NewReader(w.conn), bufio.NewWriter(w.conn)), nil
}
