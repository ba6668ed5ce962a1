package engine_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// ReadyEpoch reads a partition's readiness marker, which every MarkReady
// sets anew; PartitionsNotReady lists the partitions without one.
func TestReadyEpoch(t *testing.T) {
	t.Parallel()
	e, raw := rawEngine(t)
	ctx := context.Background()

	v, err := e.ReadyEpoch(ctx, 1)
	require.NoError(t, err)
	require.Empty(t, v, "not ready")
	missing, err := e.PartitionsNotReady(ctx, []int{1, 0})
	require.NoError(t, err)
	require.Equal(t, []int{1, 0}, missing, "in the order asked")

	require.NoError(t, e.MarkReady(ctx, 1))
	v, err = e.ReadyEpoch(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, raw.Get(ctx, e.ReadyKey(1)).Val(), v)
	ms, err := strconv.ParseInt(v, 10, 64)
	require.NoError(t, err)
	require.InDelta(t, e.Now().UnixMilli(), ms, 60_000, "unix milliseconds")
	missing, err = e.PartitionsNotReady(ctx, []int{0, 1})
	require.NoError(t, err)
	require.Equal(t, []int{0}, missing)

	require.NoError(t, raw.Set(ctx, e.ReadyKey(1), "1", 0).Err()) // as a rebuild long ago left it
	require.NoError(t, e.MarkReady(ctx, 1))
	v2, err := e.ReadyEpoch(ctx, 1)
	require.NoError(t, err)
	require.NotEqual(t, "1", v2, "a new marker")

	require.NoError(t, e.MarkReady(ctx, 0))
	missing, err = e.PartitionsNotReady(ctx, []int{0, 1})
	require.NoError(t, err)
	require.Empty(t, missing)
	missing, err = e.PartitionsNotReady(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, missing)
}
