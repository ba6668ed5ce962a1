package persist

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shelfline/inventory/engine"
)

// Transfers in the ledger (docs/design.md §20.5). The first event of each
// step of a transfer carries the record of the side that ran it
// (engine.Event.TransferRecord); the persister keeps the last of each side
// in the transfers table, in the transaction that writes the events, so a
// side's record and its events are in the ledger together. Which record is
// the last is decided by the stream id: each side's steps run in one
// partition, whose stream ids grow.

// upsertTransferSQL writes one side's record: the destination's (status,
// lines, dst_stream) or the source's (src_state, src_stream), each only
// when its stream id is newer than the stored one's.
const upsertTransferSQL = `INSERT INTO transfers AS t (id, from_store, to_store, expected_at, reference, created_at,
	status, lines, updated_at, dst_stream, src_state, src_stream)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (id) DO UPDATE SET
	status = CASE WHEN transfer_stream_after(EXCLUDED.dst_stream, t.dst_stream) THEN EXCLUDED.status ELSE t.status END,
	lines = CASE WHEN transfer_stream_after(EXCLUDED.dst_stream, t.dst_stream) THEN EXCLUDED.lines ELSE t.lines END,
	dst_stream = CASE WHEN transfer_stream_after(EXCLUDED.dst_stream, t.dst_stream) THEN EXCLUDED.dst_stream ELSE t.dst_stream END,
	src_state = CASE WHEN transfer_stream_after(EXCLUDED.src_stream, t.src_stream) THEN EXCLUDED.src_state ELSE t.src_state END,
	src_stream = CASE WHEN transfer_stream_after(EXCLUDED.src_stream, t.src_stream) THEN EXCLUDED.src_stream ELSE t.src_stream END,
	updated_at = greatest(t.updated_at, EXCLUDED.updated_at)`

// queueTransfers adds to b the upsert of every transfer record the events
// carry. A record that does not parse is left out: its events are in the
// ledger, and the reconciler reports the transfer.
func queueTransfers(b *pgx.Batch, events []engine.Event) int {
	n := 0
	for i := range events {
		ev := &events[i]
		if ev.TransferRecord == "" {
			continue
		}
		rec, err := engine.ParseTransferRecord(ev.TransferRecord)
		if err != nil {
			continue
		}
		lines := make([][]any, len(rec.Lines))
		for j, l := range rec.Lines {
			lines[j] = []any{l.SKU, l.Qty, l.Received, l.Damaged, l.Missing}
		}
		lj, _ := json.Marshal(lines)
		var ea *time.Time
		if rec.ExpectedAt > 0 {
			t := time.UnixMilli(rec.ExpectedAt).UTC()
			ea = &t
		}
		var status *string
		dst, srcState, src := "", "", ""
		if rec.Source() {
			srcState, src = rec.Status, ev.StreamID
		} else {
			s := rec.Status
			status, dst = &s, ev.StreamID
		}
		b.Queue(upsertTransferSQL, rec.ID, rec.From, rec.To, ea, rec.Reference, time.UnixMilli(rec.CreatedAt).UTC(),
			status, string(lj), time.UnixMilli(rec.UpdatedAt).UTC(), dst, srcState, src)
		n++
	}
	return n
}

// writeTransfers upserts, in tx, the transfer records the events carry.
func writeTransfers(ctx context.Context, tx pgx.Tx, events []engine.Event) error {
	b := &pgx.Batch{}
	if queueTransfers(b, events) == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("write transfers: %w", err)
	}
	return nil
}

// transfersOfStoresSQL lists the transfers with an end at one of the
// stores.
const transfersOfStoresSQL = `SELECT id, from_store, to_store, expected_at, reference, created_at,
	coalesce(status, ''), lines, updated_at, src_state
FROM transfers WHERE to_store = ANY($1) OR from_store = ANY($1)`

// restoreTransfers writes back every transfer side of partition p's
// stores from the ledger (engine.RestoreTransfer), queuing again the steps
// whose second half the ledger lacks. It returns how many transfers it
// restored.
func restoreTransfers(ctx context.Context, pool *pgxpool.Pool, e *engine.Engine, p int, stores []string) (int, error) {
	states, err := ledgerTransfers(ctx, pool, stores)
	if err != nil {
		return 0, fmt.Errorf("restore transfers of partition %d: %w", p, err)
	}
	for _, st := range states {
		if _, err := e.RestoreTransfer(ctx, p, st); err != nil {
			return 0, err
		}
	}
	return len(states), nil
}

// ledgerTransfers reads the transfers with an end at one of the stores.
func ledgerTransfers(ctx context.Context, pool *pgxpool.Pool, stores []string) ([]engine.TransferState, error) {
	if len(stores) == 0 {
		return nil, nil
	}
	rows, err := pool.Query(ctx, transfersOfStoresSQL, stores)
	if err != nil {
		return nil, err
	}
	var states []engine.TransferState
	for rows.Next() {
		var (
			st       engine.TransferState
			ea       *time.Time
			ca, ua   time.Time
			lines    []byte
			raw      [][]json.RawMessage
			srcState string
		)
		if err := rows.Scan(&st.Dest.ID, &st.Dest.From, &st.Dest.To, &ea, &st.Dest.Reference, &ca,
			&st.Dest.Status, &lines, &ua, &srcState); err != nil {
			rows.Close()
			return nil, err
		}
		if ea != nil {
			st.Dest.ExpectedAt = ea.UnixMilli()
		}
		st.Dest.CreatedAt, st.Dest.UpdatedAt, st.SrcState = ca.UnixMilli(), ua.UnixMilli(), srcState
		if err := json.Unmarshal(lines, &raw); err != nil {
			rows.Close()
			return nil, fmt.Errorf("transfer %s: lines: %w", st.Dest.ID, err)
		}
		for _, l := range raw {
			var tl engine.TransferLine
			if len(l) == 5 {
				_ = json.Unmarshal(l[0], &tl.SKU)
				_ = json.Unmarshal(l[1], &tl.Qty)
				_ = json.Unmarshal(l[2], &tl.Received)
				_ = json.Unmarshal(l[3], &tl.Damaged)
				_ = json.Unmarshal(l[4], &tl.Missing)
			}
			st.Dest.Lines = append(st.Dest.Lines, tl)
		}
		states = append(states, st)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return states, nil
}

// KindTransferDrift: a settled transfer whose events break DESIGN §11's
// invariant: the on_hand its events moved plus what it still has open is
// not minus its missing units (from a location), or not its received and
// damaged units (from a supplier); or the incoming its events added is not
// what is open. Nothing to repair automatically: a person decides.
const KindTransferDrift = "transfer_drift"

// transferDriftSQL checks every settled transfer (both sides' steps in the
// ledger: its status known, its source shipped or returned, a cancelled
// transfer's units returned) against its events. The sums over its events
// come from the two stores it touches.
const transferDriftSQL = `WITH t AS (
	SELECT t.id, t.from_store, t.to_store, t.status,
		coalesce(sum((l->>1)::bigint - (l->>2)::bigint - (l->>3)::bigint - (l->>4)::bigint)
			FILTER (WHERE t.status = 'in_transit'), 0) AS open,
		coalesce(sum((l->>4)::bigint), 0) AS missing,
		coalesce(sum((l->>2)::bigint + (l->>3)::bigint), 0) AS arrived
	FROM transfers t, jsonb_array_elements(t.lines) l
	WHERE t.status IS NOT NULL
		AND (t.from_store = '' OR t.src_state <> '')
		AND NOT (t.status = 'cancelled' AND t.src_state = 'shipped')
	GROUP BY t.id, t.from_store, t.to_store, t.status
), s AS (
	SELECT t.id, coalesce(sum(e.delta_on_hand), 0) AS dh, coalesce(sum(e.delta_incoming), 0) AS di
	FROM t LEFT JOIN inventory_events e
		ON e.store_id IN (t.from_store, t.to_store) AND e.transfer_id = t.id
	GROUP BY t.id
)
SELECT t.id, t.from_store, t.to_store, t.status, t.open, t.missing, t.arrived, s.dh, s.di
FROM t JOIN s USING (id)
WHERE s.di <> t.open
	OR (t.from_store <> '' AND s.dh + t.open <> -t.missing)
	OR (t.from_store = '' AND s.dh <> t.arrived)
ORDER BY t.id`

// transfers reports every settled transfer that breaks the invariant.
func (r *Reconciler) transfers(ctx context.Context, rep *Report) error {
	rows, err := r.pool.Query(ctx, transferDriftSQL)
	if err != nil {
		return fmt.Errorf("reconcile transfers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id, from, to, status           string
			open, missing, arrived, dh, di int64
		)
		if err := rows.Scan(&id, &from, &to, &status, &open, &missing, &arrived, &dh, &di); err != nil {
			return fmt.Errorf("reconcile transfers: %w", err)
		}
		rep.Findings = append(rep.Findings, Finding{Kind: KindTransferDrift, Store: to,
			Action: "none: a person decides",
			Detail: fmt.Sprintf("transfer %s from %q to %s (%s): its events moved on_hand by %d and incoming by %d, "+
				"with %d open, %d missing, %d arrived", id, from, to, status, dh, di, open, missing, arrived)})
	}
	return rows.Err()
}

// KindTransferMissing: Redis lacks a side of a transfer the ledger has (the
// destination's record or the source's marker): lost with a failover's
// tail or a key lost in a ready partition. Repair writes it back from the
// ledger where it is still absent, and queues the unfinished steps again.
const KindTransferMissing = "transfer_missing"

// missingTransfers reports, per partition, the transfer sides Redis lacks,
// and in repair mode writes them back (engine.RestoreMissingTransfer).
func (r *Reconciler) missingTransfers(ctx context.Context, p int, stores []string, mode Mode, rep *Report) error {
	if ready, err := r.e.PartitionReady(ctx, p); err != nil || !ready {
		return err // a partition being rebuilt gets its transfers back from the rebuild
	}
	states, err := ledgerTransfers(ctx, r.pool, stores)
	if err != nil {
		return fmt.Errorf("reconcile transfers of partition %d: %w", p, err)
	}
	for _, st := range states {
		dest, src, err := r.e.TransferSidesMissing(ctx, p, st)
		if err != nil {
			return fmt.Errorf("reconcile transfers of partition %d: %w", p, err)
		}
		if !dest && !src {
			continue
		}
		f := Finding{Kind: KindTransferMissing, Store: st.Dest.To, Action: "none (check mode)",
			Detail: fmt.Sprintf("transfer %s: Redis lacks the destination's record: %t, the source's marker: %t", st.Dest.ID, dest, src)}
		if mode == ModeRepair {
			n, err := r.e.RestoreMissingTransfer(ctx, p, st)
			if err != nil {
				return err
			}
			f.Action = fmt.Sprintf("restored %d side(s) from the ledger and queued the unfinished steps", n)
		}
		rep.Findings = append(rep.Findings, f)
	}
	return nil
}
