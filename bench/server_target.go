package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/shelfline/inventory/httpapi"
	"github.com/shelfline/inventory/persist"
)

// serverTarget is the product's full HTTP server (auth, rate limits,
// idempotency, validation, metrics, with the persister and the sweeper
// running beside it) started in-process on a loopback port over an engine
// target, and loaded over HTTP exactly like http and bare: the number to
// hold against bare's.
type serverTarget struct {
	*httpClient
	eng  *engineTarget
	stop context.CancelFunc
	done chan error
}

func newServerTarget(ctx context.Context, cfg Config, run string) (*serverTarget, error) {
	eng, err := newEngineTarget(ctx, cfg, run)
	if err != nil {
		return nil, err
	}
	token := randomHex(16)
	hc := httpapi.Config{
		Engine: eng.e,
		Keys:   []httpapi.Key{{Token: token, Role: httpapi.RoleAdmin}},
		Logger: cfg.Logger,
		// The limiter stays in the path (its cost is part of the server's)
		// but never refuses: the run measures capacity, not a quota.
		RatePerSecond: 1e9,
		RateBurst:     1 << 30,
	}
	if eng.ledger != nil {
		hc.Ledger = persist.NewLedger(eng.ledger.pool)
	}
	if eng.pers != nil {
		p := eng.pers
		hc.PersisterStats = func() httpapi.PersisterStats {
			s := p.Stats()
			var lag int64
			for _, v := range s.Lag {
				lag += v
			}
			return httpapi.PersisterStats{Lag: lag, Persisted: s.EventsPersisted, Batches: s.Batches,
				DeadLetters: s.DeadLetters, Errors: s.WriteErrors, LastBatchSize: s.LastBatchSize}
		}
	}
	srv, err := httpapi.New(hc)
	if err != nil {
		_ = eng.Close(ctx)
		return nil, fmt.Errorf("server: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = eng.Close(ctx)
		return nil, fmt.Errorf("server: %w", err)
	}
	sctx, stop := context.WithCancel(context.Background())
	t := &serverTarget{eng: eng, stop: stop, done: make(chan error, 1)}
	go func() { t.done <- srv.Serve(sctx, ln) }()
	t.httpClient = newHTTPClient("http://"+ln.Addr().String(), token, cfg.Workers, 0)
	t.httpClient.ledger = eng.ledger
	return t, nil
}

// CheckLedger waits for the persister and checks the ledger, as for engine.
func (t *serverTarget) CheckLedger(ctx context.Context, items []ItemState) ([]string, error) {
	return t.eng.CheckLedger(ctx, items)
}

func (t *serverTarget) Close(ctx context.Context) error {
	t.stop()
	var errs []error
	select {
	case err := <-t.done:
		errs = append(errs, err)
	case <-time.After(15 * time.Second):
		errs = append(errs, errors.New("server did not stop within 15s"))
	}
	t.httpClient.closeIdle()
	errs = append(errs, t.eng.Close(ctx))
	return errors.Join(errs...)
}

// HasLedger reports whether there is a ledger to check.
func (t *serverTarget) HasLedger() bool { return t.eng.ledger != nil }

// Persisted counts the events the persister has written to the ledger.
func (t *serverTarget) Persisted() (int64, bool) { return t.eng.Persisted() }
