package persist

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// ErrRunNotFound is returned by RequestCancel for a run id that no
// reconciliation run has.
var ErrRunNotFound = errors.New("no reconciliation run has this id")

// ErrRunFinished is returned by RequestCancel for a run that is over.
var ErrRunFinished = errors.New("the reconciliation run is over")

// CancelRequest is what RequestCancel recorded.
type CancelRequest struct {
	RunID int64 `json:"run_id"`
	// CancelRequestedAt is when the cancellation was first asked for; a
	// second request keeps the first time.
	CancelRequestedAt time.Time `json:"cancel_requested_at"`
}

const (
	requestCancelSQL = `UPDATE reconciliation_runs SET cancel_requested_at = coalesce(cancel_requested_at, $2)
WHERE id = $1 AND finished_at IS NULL RETURNING cancel_requested_at`
	runFinishedSQL   = `SELECT finished_at IS NOT NULL FROM reconciliation_runs WHERE id = $1`
	cancelPendingSQL = `SELECT cancel_requested_at IS NOT NULL FROM reconciliation_runs WHERE id = $1`
)

// RequestCancel asks the reconciliation run with this id to stop, wherever
// it runs: the request is recorded on the run's row, which the process
// running it reads every CancelPollInterval (a run of this Reconciler is
// cancelled at once). The run then stops, records what it found until then
// and returns ErrReconcileCancelled, and its lock is freed. Asking again is
// harmless. Errors: ErrRunNotFound, ErrRunFinished, or PostgreSQL failing.
// A run whose process died stays unfinished in the record; asking to cancel
// it records the request and changes nothing else.
func (r *Reconciler) RequestCancel(ctx context.Context, run int64) (CancelRequest, error) {
	out := CancelRequest{RunID: run}
	err := r.pool.QueryRow(ctx, requestCancelSQL, run, r.cfg.Clock().UTC()).Scan(&out.CancelRequestedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		var finished bool
		switch err := r.pool.QueryRow(ctx, runFinishedSQL, run).Scan(&finished); {
		case errors.Is(err, pgx.ErrNoRows):
			return out, ErrRunNotFound
		case err != nil:
			return out, fmt.Errorf("cancel reconcile run %d: %w", run, err)
		}
		return out, ErrRunFinished
	}
	if err != nil {
		return out, fmt.Errorf("cancel reconcile run %d: %w", run, err)
	}
	r.progress.cancelRun(run)
	return out, nil
}

// watchCancel cancels run when a cancellation is recorded for it, checking
// every CancelPollInterval until the returned function is called.
func (r *Reconciler) watchCancel(ctx context.Context, run int64) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(r.cfg.CancelPollInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			var asked bool
			if err := r.pool.QueryRow(ctx, cancelPendingSQL, run).Scan(&asked); err != nil {
				if ctx.Err() == nil {
					r.log.Debug("reading the run's cancellation", zap.Int64(logRunID, run), zap.Error(err))
				}
				continue
			}
			if asked {
				r.log.Info("reconciliation run cancelled on request", zap.Int64(logRunID, run))
				r.progress.cancelRun(run)
				return
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
