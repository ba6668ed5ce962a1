package testsupport

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/persist"
)

// PersisterStopWait is how long a StartPersister's stop waits for Run to
// return before it fails the test.
const PersisterStopWait = 15 * time.Second

// FastPersister fills cfg's unset timings with short ones for tests: Block
// 50ms, Linger 5ms, RetryMin 10ms, RetryMax 200ms, TrimInterval 50ms.
//
// It leaves ClaimIdle and ClaimInterval to the persister's defaults (5s and
// 1s), under which a live consumer's pending entries stay its own; a test
// of reclaiming a dead consumer's entries sets them.
func FastPersister(cfg persist.PersisterConfig) persist.PersisterConfig {
	if cfg.Block == 0 {
		cfg.Block = 50 * time.Millisecond
	}
	if cfg.Linger == 0 {
		cfg.Linger = 5 * time.Millisecond
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin = 10 * time.Millisecond
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 200 * time.Millisecond
	}
	if cfg.TrimInterval == 0 {
		cfg.TrimInterval = 50 * time.Millisecond
	}
	return cfg
}

// StartPersister runs a persister of e on pool, with FastPersister(cfg),
// until the test ends or stop is called. stop cancels Run, waits for it
// (failing the test after PersisterStopWait) and returns its error; later
// calls return the same.
func StartPersister(t testing.TB, e *engine.Engine, pool *pgxpool.Pool, cfg persist.PersisterConfig) (p *persist.Persister, stop func() error) {
	t.Helper()
	p, err := persist.NewPersister(e, pool, FastPersister(cfg))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(PersisterStopWait):
				t.Errorf("the persister did not stop within %s", PersisterStopWait)
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return p, stop
}
