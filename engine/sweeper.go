package engine

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// SweeperConfig configures a Sweeper.
type SweeperConfig struct {
	// Interval between sweeps. Defaults to 500ms, so a hold is released
	// within about a second of expires_at.
	Interval time.Duration
	// Batch is how many reservations one script call expires at most.
	// Defaults to 200.
	Batch int
}

// Sweeper expires due reservations of every partition. Many sweepers may run
// at once (one per process): each expiry is one atomic script.
type Sweeper struct {
	e   *Engine
	cfg SweeperConfig
}

// NewSweeper returns a sweeper for e.
func NewSweeper(e *Engine, cfg SweeperConfig) *Sweeper {
	if cfg.Interval <= 0 {
		cfg.Interval = 500 * time.Millisecond
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 200
	}
	return &Sweeper{e: e, cfg: cfg}
}

// Run sweeps until ctx is done, then returns nil.
func (s *Sweeper) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		s.SweepOnce(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// SweepOnce expires every due reservation now and returns how many.
func (s *Sweeper) SweepOnce(ctx context.Context) int {
	total := 0
	for p := 0; p < s.e.Partitions(); p++ {
		for ctx.Err() == nil {
			n, err := s.e.ExpireDue(ctx, p, s.cfg.Batch)
			if err != nil {
				if ctx.Err() == nil {
					s.e.log.Warn("expire reservations", zap.Int(logPartition, p), zap.Error(err))
				}
				break
			}
			total += n
			if n < s.cfg.Batch {
				break
			}
		}
	}
	return total
}
