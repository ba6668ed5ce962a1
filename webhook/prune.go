package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// Retention of the delivery log. A delivered or failed row is kept for
// Config.Retention after it was written, then deleted by the workers, in
// batches, every Config.PruneInterval; pending rows are never deleted. Rows
// are written in seq order, so the rows old enough lie below the first seq
// written since the cut: that one is found on the primary key, scanning
// only the rows to delete (and the few pending ones among them), and the
// batches delete by seq. No index is needed beyond the primary key.

// pruneBatch is the most rows one DELETE removes.
const pruneBatch = 10000

// DefaultRetention is Config.Retention's default.
const DefaultRetention = 7 * 24 * time.Hour

// PruneDeliveries deletes the delivered and failed deliveries written more
// than olderThan ago, of every subscription, and returns how many. It runs
// in batches of at most batch rows (pruneBatch when batch is 0), each its own
// statement, until none is left; concurrent runs in other workers are safe.
func (s *Store) PruneDeliveries(ctx context.Context, olderThan time.Duration, batch int) (int64, error) {
	if olderThan <= 0 {
		return 0, fmt.Errorf("prune deliveries: olderThan must be positive, got %s", olderThan)
	}
	if batch <= 0 {
		batch = pruneBatch
	}
	var cut *int64
	err := s.pool.QueryRow(ctx, `
		SELECT seq FROM webhook_deliveries
		WHERE created_at >= now() - make_interval(secs => $1)
		ORDER BY seq LIMIT 1`, olderThan.Seconds()).Scan(&cut)
	if errors.Is(err, pgx.ErrNoRows) {
		cut = nil // every row is older than the cut
	} else if err != nil {
		return 0, fmt.Errorf("prune deliveries: %w", err)
	}
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, `
			DELETE FROM webhook_deliveries WHERE seq IN (
				SELECT seq FROM webhook_deliveries
				WHERE ($1::bigint IS NULL OR seq < $1) AND status <> 'pending'
				  AND created_at < now() - make_interval(secs => $2)
				ORDER BY seq LIMIT $3)`, cut, olderThan.Seconds(), batch)
		if err != nil {
			return total, fmt.Errorf("prune deliveries: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(batch) || ctx.Err() != nil {
			return total, ctx.Err()
		}
	}
}

// prune deletes old deliveries every PruneInterval until ctx is done.
func (d *Dispatcher) prune(ctx context.Context) {
	if d.cfg.Retention <= 0 {
		return
	}
	t := time.NewTicker(d.cfg.PruneInterval)
	defer t.Stop()
	for {
		n, err := d.store.PruneDeliveries(ctx, d.cfg.Retention, d.cfg.PruneBatch)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			d.log.Warn("prune the delivery log", zap.Error(err))
		case n > 0:
			d.log.Info("pruned the delivery log", zap.Int64("deliveries", n), zap.Duration("older_than", d.cfg.Retention))
		}
		d.pruned.Add(n)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
