package persist_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// TestRebuildRemembersKeys: a keyed sale is applied and persisted, its reply
// is lost, and Redis loses its data. After the rebuild a retry of the same
// key answers ErrAlreadyApplied and changes nothing; another key, and a
// write without a key, apply as usual.
func TestRebuildRemembersKeys(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 2})
	ctx := context.Background()
	_, _ = v.startPersister(t, persist.PersisterConfig{})
	_, err := v.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 10}, engine.Op{})
	require.NoError(t, err)
	req := engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 3}}}
	op := engine.Op{IdempotencyKey: "order-77", Principal: "web"}
	_, err = v.e.Checkout(ctx, req, op)
	require.NoError(t, err)
	_, err = v.e.Checkout(ctx, req, engine.Op{})
	require.NoError(t, err)
	// a client key shaped like an operation id the engine once generated
	odd := engine.Op{IdempotencyKey: "~g0123456789abcdef0123456789abcdef", Principal: "web"}
	oddReq := engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}
	_, err = v.e.Checkout(ctx, oddReq, odd)
	require.NoError(t, err)
	testsupport.WaitFor(t, 20*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })

	p := v.e.Partition("s1")
	v.deletePartition(t, p)
	rb, err := persist.NewRebuilder(v.e, v.pool, persist.RebuilderConfig{})
	require.NoError(t, err)
	require.NoError(t, rb.RebuildPartition(ctx, p))

	_, err = v.e.Checkout(ctx, req, op)
	require.ErrorIs(t, err, engine.ErrAlreadyApplied)
	_, err = v.e.Checkout(ctx, oddReq, odd)
	require.ErrorIs(t, err, engine.ErrAlreadyApplied, "every client key is remembered, whatever it looks like")
	it, err := v.e.GetItem(ctx, "s1", "sofa")
	require.NoError(t, err)
	require.Equal(t, int64(3), it.OnHand, "the retries changed nothing")
	// the key is scoped by principal: another principal's key of that name is new
	_, err = v.e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}, engine.Op{IdempotencyKey: "order-77", Principal: "till"})
	require.NoError(t, err)
	_, err = v.e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}, engine.Op{})
	require.NoError(t, err)
	it, err = v.e.GetItem(ctx, "s1", "sofa")
	require.NoError(t, err)
	require.Equal(t, int64(1), it.OnHand)
	// generated operation ids are not restored
	n, err := v.rdb.Keys(ctx, v.e.KeyBase(p)+"idem:*"+engine.GeneratedOpPrefix+"*").Result()
	require.NoError(t, err)
	require.Empty(t, n)
}
