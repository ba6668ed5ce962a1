package scaleout

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// ledgerProblems compares, for every item of the traffic, Redis with the
// ledger (persist.CheckLedger): versions 1..N in inventory_events without a
// gap or duplicate where N is Redis' version, the sums of the deltas equal
// to Redis' on_hand and reserved, and inventory_items equal to Redis. It
// returns one line per violation.
func (d *deployment) ledgerProblems(tr *traffic) []string {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var state []persist.LedgerState
	for _, s := range tr.stores {
		for _, k := range tr.skus {
			var it engine.Item
			var err error
			// A read right after a failover may need the cluster's new map.
			require.True(d.t, testsupport.Poll(10*time.Second, func() bool {
				it, err = d.e.GetItem(ctx, s, k)
				return err == nil
			}), "read %s/%s: %v", s, k, err)
			state = append(state, persist.LedgerState{Store: s, SKU: k, OnHand: it.OnHand, Reserved: it.Reserved, Version: it.Version})
		}
	}
	return testsupport.LedgerViolations(d.t, d.pool, nil, persist.LedgerCheck{Stores: tr.stores, State: state})
}

// missingAcked returns the acknowledged writes whose event (item, version,
// operation id) is neither in inventory_events nor among the events of a
// fork the reconciler merged into the ledger (drift_findings, resolved: the
// merge's RECONCILE event carries their effect).
func (d *deployment) missingAcked(tr *traffic) []string {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := d.pool.Query(ctx, `SELECT store_id, sku, version, op_id FROM inventory_events WHERE store_id = ANY($1)
UNION ALL
SELECT store_id, sku, version, after->>'op_id' FROM drift_findings
WHERE store_id = ANY($1) AND kind IN ('fork', 'held_back') AND run_id IS NULL AND resolved_run_id > 0`, tr.stores)
	require.NoError(d.t, err)
	have := map[string]map[string]bool{}
	ledger := map[string]string{}
	for rows.Next() {
		var s, k, op string
		var v int64
		require.NoError(d.t, rows.Scan(&s, &k, &v, &op))
		key := fmt.Sprintf("%s@%d", itemKey(s, k), v)
		if have[key] == nil {
			have[key] = map[string]bool{}
			ledger[key] = op
		}
		have[key][op] = true
	}
	require.NoError(d.t, rows.Err())
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []string
	for item, vs := range tr.acked {
		for v, op := range vs {
			k := fmt.Sprintf("%s@%d", item, v)
			if !have[k][op] {
				out = append(out, fmt.Sprintf("%s op %q (ledger: %q)", k, op, ledger[k]))
			}
		}
	}
	sort.Strings(out)
	return out
}

// ackedCount is how many (item, version) acknowledgements the clients got.
func (tr *traffic) ackedCount() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, vs := range tr.acked {
		n += len(vs)
	}
	return n
}
