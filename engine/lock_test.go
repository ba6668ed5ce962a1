package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

// A rebuild lock is held by one holder at a time, per partition, for its
// TTL; released, it can be taken again.
func TestLockRebuild(t *testing.T) {
	t.Parallel()
	e, raw := rawEngine(t)
	ctx := context.Background()
	key := e.RebuildLockKey(0)

	l, err := e.LockRebuild(ctx, 0, 30*time.Second)
	require.NoError(t, err)
	token := raw.Get(ctx, key).Val()
	require.Len(t, token, 32, "a random token")
	ttl := raw.PTTL(ctx, key).Val()
	require.Greater(t, ttl, 29*time.Second)
	require.LessOrEqual(t, ttl, 30*time.Second)

	_, err = e.LockRebuild(ctx, 0, 30*time.Second)
	require.ErrorIs(t, err, engine.ErrLockHeld)
	l1, err := e.LockRebuild(ctx, 1, 30*time.Second)
	require.NoError(t, err, "partitions lock apart")
	require.NotEqual(t, token, raw.Get(ctx, e.RebuildLockKey(1)).Val(), "each lease its own token")

	require.NoError(t, l.Release(ctx))
	require.Zero(t, raw.Exists(ctx, key).Val(), "released")
	require.NoError(t, l.Release(ctx), "releasing twice is harmless")
	l2, err := e.LockRebuild(ctx, 0, 30*time.Second)
	require.NoError(t, err, "free again")
	require.NoError(t, l2.Release(ctx))
	require.NoError(t, l1.Release(ctx))
}

// Extend renews the lease; once the key is gone the lease is lost.
func TestLockExtend(t *testing.T) {
	t.Parallel()
	e, raw := rawEngine(t)
	ctx := context.Background()
	key := e.RebuildLockKey(1)
	l, err := e.LockRebuild(ctx, 1, 20*time.Second)
	require.NoError(t, err)

	require.NoError(t, raw.PExpire(ctx, key, 2*time.Second).Err())
	require.NoError(t, l.Extend(ctx))
	ttl := raw.PTTL(ctx, key).Val()
	require.Greater(t, ttl, 19*time.Second, "renewed to the lease's TTL")
	require.LessOrEqual(t, ttl, 20*time.Second)

	require.NoError(t, raw.Del(ctx, key).Err()) // the lease ran out
	require.ErrorIs(t, l.Extend(ctx), engine.ErrLockLost)

	// Another holder took the lock meanwhile: the old lease does not
	// extend it.
	other, err := e.LockRebuild(ctx, 1, 3*time.Second)
	require.NoError(t, err)
	require.ErrorIs(t, l.Extend(ctx), engine.ErrLockLost)
	ttl = raw.PTTL(ctx, key).Val()
	require.LessOrEqual(t, ttl, 3*time.Second, "the other holder's lease keeps its own TTL")
	require.NoError(t, other.Extend(ctx))
	require.NoError(t, other.Release(ctx))
}

// A holder whose lease ran out never releases the lock another holder took
// since.
func TestLockReleaseKeepsAnothersLock(t *testing.T) {
	t.Parallel()
	e, raw := rawEngine(t)
	ctx := context.Background()
	key := e.RebuildLockKey(0)
	l, err := e.LockRebuild(ctx, 0, 30*time.Second)
	require.NoError(t, err)

	require.NoError(t, raw.Set(ctx, key, "another holder", time.Minute).Err())
	require.NoError(t, l.Release(ctx))
	require.Equal(t, "another holder", raw.Get(ctx, key).Val(), "not this lease's to release")
	_, err = e.LockRebuild(ctx, 0, 30*time.Second)
	require.ErrorIs(t, err, engine.ErrLockHeld)
}
