package engine

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Lock errors.
var (
	// ErrLockHeld: another holder has the lock.
	ErrLockHeld = errors.New("lock held by another holder")
	// ErrLockLost: the lock expired before its holder extended it.
	ErrLockLost = errors.New("lock lost")
)

// Lock is a lease on a lock key: taken by one holder at a time, for a TTL
// that its holder extends while it works, released by its random token, so
// a holder whose lease ran out never releases another's. A Lock is used by
// one goroutine.
type Lock struct {
	e     *Engine
	key   string
	token string
	ttl   time.Duration
}

// LockRebuild takes the lock of partition p's rebuild (RebuildLockKey) for
// ttl. Errors: ErrLockHeld when another holder has it.
func (e *Engine) LockRebuild(ctx context.Context, p int, ttl time.Duration) (*Lock, error) {
	return e.lock(ctx, e.RebuildLockKey(p), ttl)
}

// lock takes key for ttl (SET NX PX).
func (e *Engine) lock(ctx context.Context, key string, ttl time.Duration) (*Lock, error) {
	l := &Lock{e: e, key: key, token: randomHex(16), ttl: ttl}
	ok, err := e.rdb.SetNX(ctx, key, l.token, ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", key, err)
	}
	if !ok {
		return nil, fmt.Errorf("lock %s: %w", key, ErrLockHeld)
	}
	return l, nil
}

// Extend makes the lock last its TTL from now, while it still holds this
// lease's token. Errors: ErrLockLost when the lease ran out (the key is
// gone, or another holder has taken it since: theirs is left alone).
func (l *Lock) Extend(ctx context.Context) error {
	n, err := l.e.scripts.Extend.Run(ctx, l.e.rdb, []string{l.key}, l.token, l.ttl.Milliseconds()).Int64()
	if err != nil {
		return fmt.Errorf("extend lock %s: %w", l.key, err)
	}
	if n != 1 {
		return fmt.Errorf("extend lock %s: %w", l.key, ErrLockLost)
	}
	return nil
}

// Release deletes the lock if it still holds this lease's token; a lock
// taken by another holder since stays. Releasing twice is harmless.
func (l *Lock) Release(ctx context.Context) error {
	if err := l.e.compareAndDelete(ctx, l.key, l.token); err != nil {
		return fmt.Errorf("release lock %s: %w", l.key, err)
	}
	return nil
}
