package redistest

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Kill SIGKILLs the server and waits for it to exit. Without persistence it
// loses everything, as a crash of a Redis without AOF would. Killing a
// stopped server is harmless.
func (s *Server) Kill() { s.c.nodes[0].kill() }

// Running reports whether the server's process is alive.
func (s *Server) Running() bool { return s.c.nodes[0].Running() }

// Restart kills the server if it runs and starts it again, empty, on the
// same port and directory, returning once it answers PING.
func (s *Server) Restart(ctx context.Context) error {
	if s.c.isStopped() {
		return ErrStopped
	}
	n := s.c.nodes[0]
	n.kill()
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = s.c.launch(ctx, n); err == nil || !errors.Is(err, errAddrInUse) {
			break
		}
		// The port may linger for a moment after the kill.
		select {
		case <-ctx.Done():
			return fmt.Errorf("redistest: restart %s: %w", n.Addr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("redistest: restart %s: %w", n.Addr, err)
	}
	return nil
}
