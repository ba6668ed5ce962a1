package persist

import (
	"context"
	"fmt"
	"time"

	"github.com/shelfline/inventory/engine"
)

// keyedOpsSQL lists the requests made with a client's idempotency key whose
// record would still be alive: every operation id of the partition's stores
// within the idempotency TTL, but the engine's generated ids, expiries and
// the reconciler's own rows.
const keyedOpsSQL = `SELECT principal, op_id, max(occurred_at)
FROM inventory_events
WHERE store_id = ANY($1) AND occurred_at > $2 AND op_id <> ''
	AND left(op_id, 2) <> '` + engine.GeneratedOpPrefix + `' AND type NOT IN ('EXPIRE', 'RECONCILE')
GROUP BY principal, op_id`

// restoreKeyedOps puts back, for the keyed requests the ledger holds, records
// that make a retry of the same key answer "already applied" instead of
// applying it a second time: Redis lost the records with its data, the
// ledger still knows the keys.
func (r *Rebuilder) restoreKeyedOps(ctx context.Context, p int) (int, error) {
	stores, err := partitionStores(ctx, r.e, r.pool, p)
	if err != nil || len(stores) == 0 {
		return 0, err
	}
	ttl := r.e.IdempotencyTTL()
	rows, err := r.pool.Query(ctx, keyedOpsSQL, stores, r.e.Now().Add(-ttl))
	if err != nil {
		return 0, fmt.Errorf("rebuild partition %d: keyed requests: %w", p, err)
	}
	defer rows.Close()
	var ops []engine.KeyedOp
	for rows.Next() {
		var o engine.KeyedOp
		var at time.Time
		if err := rows.Scan(&o.Principal, &o.Key, &at); err != nil {
			return 0, fmt.Errorf("rebuild partition %d: keyed requests: %w", p, err)
		}
		o.Until = at.Add(ttl)
		ops = append(ops, o)
		if len(ops) == 1000 {
			if err := r.e.RestoreIdempotency(ctx, p, ops); err != nil {
				return 0, err
			}
			ops = ops[:0]
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("rebuild partition %d: keyed requests: %w", p, err)
	}
	return len(ops), r.e.RestoreIdempotency(ctx, p, ops)
}
