package httpapi

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/shelfline/inventory/engine"
)

// notifier watches the last entry id of every partition's stream, once per
// server rather than once per feed, and wakes the feeds when one moves: an
// idle server costs Redis one pipeline of P commands per poll interval
// however many clients follow the feed. (A blocking XREAD over every stream
// would not work on a Redis Cluster, where the streams live in different
// slots.)
type notifier struct {
	e     *engine.Engine
	every time.Duration
	log   *zap.Logger
	done  <-chan struct{}

	once sync.Once
	mu   sync.Mutex
	wake chan struct{}
}

func newNotifier(e *engine.Engine, every time.Duration, log *zap.Logger, done <-chan struct{}) *notifier {
	return &notifier{e: e, every: every, log: log, done: done, wake: make(chan struct{})}
}

// changed returns a channel closed at the next change of any stream. The
// watcher starts with the first call.
func (n *notifier) changed() <-chan struct{} {
	n.once.Do(func() { go n.run() })
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.wake
}

func (n *notifier) broadcast() {
	n.mu.Lock()
	close(n.wake)
	n.wake = make(chan struct{})
	n.mu.Unlock()
}

func (n *notifier) run() {
	t := time.NewTicker(n.every)
	defer t.Stop()
	last := make([]string, n.e.Partitions())
	for {
		select {
		case <-n.done:
			n.broadcast()
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		heads, err := n.e.FeedHeads(ctx)
		cancel()
		if err != nil {
			n.log.Debug("event notifier", zapErr(err))
			continue
		}
		moved := false
		for i, h := range heads {
			if h == "0-0" { // an empty stream: its last head still stands
				continue
			}
			if h != last[i] {
				last[i] = h
				moved = true
			}
		}
		if moved {
			n.broadcast()
		}
	}
}
