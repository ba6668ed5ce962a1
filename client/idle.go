package client

import (
	"io"
	"time"
)

// DefaultFeedIdleTimeout is how long a feed may stay silent, its heartbeat
// included, before the client takes the connection as broken: three of
// the server's default 15 s heartbeats.
const DefaultFeedIdleTimeout = 45 * time.Second

// WithFeedIdleTimeout sets how long an event feed (Events, WebSocketEvents)
// may send nothing, not even its heartbeat, before the connection is taken
// as broken and reopened from the last position (default
// DefaultFeedIdleTimeout; 0 or less: never). It catches a connection that
// a network device dropped without closing it, which TCP alone may not
// notice for many minutes. Keep it above the server's heartbeat interval.
func WithFeedIdleTimeout(d time.Duration) Option { return func(c *Client) { c.feedIdle = d } }

// idleWatch calls onIdle once a read has waited d with nothing arriving.
// It runs only while a read waits (wait … done): a reader that does not
// read is not a silent network.
type idleWatch struct {
	t *time.Timer
	d time.Duration
}

// newIdleWatch returns a stopped watch, or nil (which does nothing) when d
// is 0 or less.
func newIdleWatch(d time.Duration, onIdle func()) *idleWatch {
	if d <= 0 {
		return nil
	}
	w := &idleWatch{t: time.AfterFunc(d, onIdle), d: d}
	w.t.Stop()
	return w
}

// wait starts the wait of a read, or restarts it when something arrived
// (a ping) while it waits.
func (w *idleWatch) wait() {
	if w != nil {
		w.t.Reset(w.d)
	}
}

// done ends the wait of a read; also the way to stop the watch.
func (w *idleWatch) done() {
	if w != nil {
		w.t.Stop()
	}
}

// watchedReader runs its watch while a Read waits.
type watchedReader struct {
	r io.Reader
	w *idleWatch
}

func (a watchedReader) Read(p []byte) (int, error) {
	a.w.wait()
	n, err := a.r.Read(p)
	a.w.done()
	return n, err
}
