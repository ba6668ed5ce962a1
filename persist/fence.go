package persist

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The rebuild's fence (docs/design.md §7.3). A batch read from a Redis that
// then lost its data must never commit after the rebuild of its partition
// read the ledger: the rebuild restores Redis from the ledger without the
// batch and makes up the transfer steps whose partner step the ledger has
// (§20.8), so the batch's original of such a step would land beside the
// made-up one, and its other events would be versions the rebuilt Redis
// reuses.
//
// Each partition has a row in rebuild_fences (migration 00013). Every
// rebuild raises its epoch (bumpFence) before it reads the ledger. A
// persister worker reads the epoch (readFence) before it reads entries
// from Redis, and each batch transaction locks the row FOR SHARE as its
// first statement and goes on only if the epoch is still the one read
// (fence.check); otherwise it rolls back with errFenced, and the worker
// reads the epoch and its entries again. The rebuild's UPDATE waits for the
// lock of every batch transaction under way, and a batch that locks after
// the UPDATE sees the new epoch. So for every rebuild R and every batch B
// that commits: either B locked the row first, and R reads a ledger that
// has B; or R raised the epoch before B's worker read the epoch, and so
// before B's entries were read, which came from the Redis R rebuilt (R runs
// once the partition's marker is gone, after the loss), not from the lost
// one.

// errFenced: the partition was rebuilt since the batch's entries were read.
var errFenced = errors.New("the partition was rebuilt since the batch was read")

// fence is the epoch a batch's entries were read under.
type fence struct {
	part  int
	epoch int64
}

const (
	fenceEnsureSQL = `INSERT INTO rebuild_fences (part, epoch) VALUES ($1, 0) ON CONFLICT (part) DO NOTHING`
	fenceReadSQL   = `SELECT epoch FROM rebuild_fences WHERE part = $1`
	fenceCheckSQL  = `SELECT epoch FROM rebuild_fences WHERE part = $1 FOR SHARE`
	fenceBumpSQL   = `INSERT INTO rebuild_fences AS f (part, epoch) VALUES ($1, 1)
ON CONFLICT (part) DO UPDATE SET epoch = f.epoch + 1 RETURNING epoch`
)

// readFence returns partition p's epoch now, creating its row if absent
// (a batch can lock only a row that exists).
func readFence(ctx context.Context, pool *pgxpool.Pool, p int) (*fence, error) {
	if _, err := pool.Exec(ctx, fenceEnsureSQL, p); err != nil {
		return nil, fmt.Errorf("read the rebuild fence of partition %d: %w", p, err)
	}
	f := &fence{part: p}
	if err := pool.QueryRow(ctx, fenceReadSQL, p).Scan(&f.epoch); err != nil {
		return nil, fmt.Errorf("read the rebuild fence of partition %d: %w", p, err)
	}
	return f, nil
}

// bumpFence raises partition p's epoch, once every batch transaction of
// the partition under way has ended, and returns the new fence.
func bumpFence(ctx context.Context, pool *pgxpool.Pool, p int) (*fence, error) {
	f := &fence{part: p}
	if err := pool.QueryRow(ctx, fenceBumpSQL, p).Scan(&f.epoch); err != nil {
		return nil, fmt.Errorf("raise the rebuild fence of partition %d: %w", p, err)
	}
	return f, nil
}

// check locks the partition's row in tx until tx ends and returns
// errFenced when its epoch is no longer f's. A nil fence checks nothing.
func (f *fence) check(ctx context.Context, tx pgx.Tx) error {
	if f == nil {
		return nil
	}
	var now int64
	err := tx.QueryRow(ctx, fenceCheckSQL, f.part).Scan(&now)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && now != f.epoch) {
		return errFenced
	}
	if err != nil {
		return fmt.Errorf("check the rebuild fence: %w", err)
	}
	return nil
}
