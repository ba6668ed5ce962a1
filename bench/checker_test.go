package bench

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/internal/testsupport"
)

func testConfig(t *testing.T) Config {
	t.Helper()
	cfg := Config{Scenario: ScenarioFlashSale, Targets: []string{TargetPGGuarded}, Workers: 8, Stock: 50,
		Duration: 10 * time.Second, PGConns: 4, OutDir: t.TempDir(), DatabaseURL: testsupport.DatabaseURL()}
	cfg = cfg.withDefaults()
	require.NoError(t, cfg.validate())
	return cfg
}

// lying wraps a real target and misreports some checkouts: every fifth
// success is reported as a refusal, and after that the target claims a sale
// it never made. The checker must catch both.
type lying struct {
	target
	n atomic.Int64
}

func (l *lying) Checkout(ctx context.Context, store string, lines []Line) error {
	switch n := l.n.Add(1); {
	case n == 5:
		if err := l.target.Checkout(ctx, store, lines); err != nil {
			return err
		}
		return errRefused // sold, but says refused
	case n == 7:
		return nil // says sold, but sold nothing
	}
	return l.target.Checkout(ctx, store, lines)
}

func TestCheckerCatchesMisreportedSales(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.Workers = 1 // the fifth checkout's refusal ends the only buyer
	pt, err := newPGTarget(ctx, cfg, "bench_"+randomHex(4)+"_lying", false)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pt.Close(context.Background())) })
	o, err := flashSale(ctx, cfg, "lying", randomHex(4), &lying{target: pt})
	require.NoError(t, err)
	failed := map[string]bool{}
	for _, c := range o.checks {
		if !c.Passed {
			failed[c.Name] = true
		}
	}
	require.True(t, failed["successes equal units sold"], "checks: %+v", o.checks)
	require.True(t, failed["refused only when sold out"], "checks: %+v", o.checks)
	require.NotEmpty(t, o.violations)
}

func TestLedgerCheckCatchesGapsAndDrift(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	pt, err := newPGTarget(ctx, cfg, "bench_"+randomHex(4)+"_ledger", false)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pt.Close(context.Background())) })
	seed := []SeedItem{{Store: "s1", SKU: "a", OnHand: 10}, {Store: "s1", SKU: "b", OnHand: 10}}
	require.NoError(t, pt.Seed(ctx, seed))
	for i := 0; i < 4; i++ {
		require.NoError(t, pt.Checkout(ctx, "s1", []Line{{SKU: "a", Qty: 1}, {SKU: "b", Qty: 1}}))
	}
	states, err := pt.Items(ctx, seed)
	require.NoError(t, err)
	v, err := pt.CheckLedger(ctx, states)
	require.NoError(t, err)
	require.Empty(t, v, "a sound ledger")

	_, err = pt.pool.Exec(ctx, `DELETE FROM inventory_events WHERE store_id = 's1' AND sku = 'a' AND version = 3`)
	require.NoError(t, err)
	_, err = pt.pool.Exec(ctx, `UPDATE inventory_events SET delta_on_hand = -2 WHERE store_id = 's1' AND sku = 'b' AND version = 4`)
	require.NoError(t, err)
	v, err = pt.CheckLedger(ctx, states)
	require.NoError(t, err)
	joined := strings.Join(v, "\n")
	require.Contains(t, joined, "ledger s1/a: 4 events over versions 1..5: a gap")
	require.Contains(t, joined, "ledger s1/b: deltas sum to on_hand 5")
}
