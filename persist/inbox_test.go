package persist_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

func snap(v, onHand, reserved int64) map[string]any {
	return map[string]any{"version": v, "on_hand": onHand, "reserved": reserved, "reorder_point": nil, "max_per_customer": nil}
}

// TestInboxListsResolvesAndDismisses: the inbox shows one finding per kind,
// item and version (however often runs reported it), only the kinds that
// need a person; a resolution adjusts the item once (an ADJUST event whose
// reason names the finding) and records the decision; a dismissal records
// it without touching stock; a decided finding is closed to both.
func TestInboxListsResolvesAndDismisses(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	ctx := context.Background()
	_, err := v.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 2}, engine.Op{Principal: "t"})
	require.NoError(t, err)
	first := testsupport.AddFinding(t, v.pool, persist.KindOversold, "s1", "sofa", 5, snap(5, 1, 3), snap(5, 1, 1))
	again := testsupport.AddFinding(t, v.pool, persist.KindOversold, "s1", "sofa", 5, snap(5, 1, 3), snap(5, 1, 1))
	gap := testsupport.AddFinding(t, v.pool, persist.KindLedgerGap, "s1", "lamp", 3, nil, snap(3, 4, 0))
	testsupport.AddFinding(t, v.pool, persist.KindRedisBehind, "s1", "desk", 2, snap(1, 1, 0), snap(2, 2, 0)) // repaired by the reconciler: not the inbox's

	in := persist.NewInbox(v.e, v.pool)
	open, err := in.List(ctx, "open", 100)
	require.NoError(t, err)
	require.Len(t, open, 2)
	byKind := map[string]persist.InboxFinding{}
	for _, f := range open {
		byKind[f.Kind] = f
	}
	require.Equal(t, again, byKind[persist.KindOversold].ID, "the newest report stands for the group")
	require.Equal(t, int64(2), byKind[persist.KindOversold].Reports)
	require.JSONEq(t, `{"version":5,"on_hand":1,"reserved":3,"reorder_point":null,"max_per_customer":null}`, string(byKind[persist.KindOversold].Before))
	require.Equal(t, "null", string(byKind[persist.KindLedgerGap].Before))

	_, err = in.Resolve(ctx, first, 0, "nothing", "admin")
	var ve *engine.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "delta", ve.Field)
	_, err = in.Resolve(ctx, first, -1, "  ", "admin")
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "note", ve.Field)
	_, err = in.Resolve(ctx, 999999, -1, "x", "admin")
	require.ErrorIs(t, err, persist.ErrFindingNotFound)

	f, err := in.Resolve(ctx, first, -1, "one sofa was sold twice; counted the floor", "admin~1")
	require.NoError(t, err)
	require.Equal(t, "resolved", f.Status)
	require.Equal(t, int64(-1), *f.Resolution.Delta)
	require.Equal(t, int64(2), *f.Resolution.EventVersion)
	require.Equal(t, "admin~1", f.Resolution.Principal)
	it, err := v.e.GetItem(ctx, "s1", "sofa")
	require.NoError(t, err)
	require.Equal(t, int64(1), it.OnHand)
	_, err = in.Resolve(ctx, again, -1, "again", "admin~2")
	require.ErrorIs(t, err, persist.ErrFindingClosed, "a resolution closes every report of the finding")
	_, err = in.Dismiss(ctx, first, "late", "admin~2")
	require.ErrorIs(t, err, persist.ErrFindingClosed)

	d, err := in.Dismiss(ctx, gap, "the lost versions were test traffic", "admin~1")
	require.NoError(t, err)
	require.Equal(t, "dismissed", d.Status)
	require.Nil(t, d.Resolution.Delta)

	open, err = in.List(ctx, "open", 100)
	require.NoError(t, err)
	require.Empty(t, open)
	closed, err := in.List(ctx, "closed", 100)
	require.NoError(t, err)
	require.Len(t, closed, 2)

	// The adjustment's event reaches the ledger with the finding in its reason.
	v.startPersister(t, persist.PersisterConfig{Linger: -1})
	testsupport.WaitFor(t, 10e9, "the ledger catches up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	evs, err := persist.NewLedger(v.pool).History(ctx, "s1", "sofa", 10)
	require.NoError(t, err)
	require.Equal(t, "ADJUST", evs[0].Type)
	require.Equal(t, int64(-1), evs[0].DeltaOnHand)
	require.Contains(t, evs[0].Reason, "finding")
	require.Contains(t, evs[0].Reason, "admin~1")
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
}

// TestInboxResolveOnce: people racing to resolve one finding (through any
// of its reports) adjust the item once; a retry after an adjustment whose
// record was lost replays it instead of adjusting again.
func TestInboxResolveOnce(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	ctx := context.Background()
	_, err := v.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "x", OnHand: 100}, engine.Op{Principal: "t"})
	require.NoError(t, err)
	ids := []int64{
		testsupport.AddFinding(t, v.pool, persist.KindCorrupt, "s1", "x", 1, snap(1, 100, 0), snap(1, 90, 0)),
		testsupport.AddFinding(t, v.pool, persist.KindCorrupt, "s1", "x", 1, snap(1, 100, 0), snap(1, 90, 0)),
	}
	in := persist.NewInbox(v.e, v.pool)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, closed int
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := in.Resolve(ctx, ids[i%2], -10, "recount", "admin")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, persist.ErrFindingClosed):
				closed++
			default:
				t.Errorf("resolve: %v", err)
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 1, ok)
	require.Equal(t, 7, closed)
	it, err := v.e.GetItem(ctx, "s1", "x")
	require.NoError(t, err)
	require.Equal(t, int64(90), it.OnHand)

	// An adjustment made for a finding whose record was then lost: the
	// retry replays it.
	lost := testsupport.AddFinding(t, v.pool, persist.KindCorrupt, "s1", "x", 2, snap(2, 90, 0), snap(2, 80, 0))
	_, err = v.e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "x", Delta: -5, Reason: "finding"},
		persist.ResolutionOp(lost, -5))
	require.NoError(t, err)
	f, err := in.Resolve(ctx, lost, -5, "recount", "admin")
	require.NoError(t, err)
	require.Equal(t, "resolved", f.Status)
	it, err = v.e.GetItem(ctx, "s1", "x")
	require.NoError(t, err)
	require.Equal(t, int64(85), it.OnHand, "adjusted once")
}
