package persist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shelfline/inventory/engine"
)

// Transfers as the ledger has them, for reads of those Redis no longer
// holds (deleted after engine.Config.TransferRetention) and for the list of
// every store's transfers (docs/design.md §20.8). The ledger trails Redis by
// the persister's lag; callers lay Redis' records over these.

// transferStatusSQL is a transfer's status as a client sees it: the
// destination's, or from the source's marker when the ledger has only that.
const transferStatusSQL = `coalesce(status, CASE src_state WHEN 'returned' THEN 'cancelled' ELSE 'in_transit' END)`

const transferColumns = `id, from_store, to_store, ` + transferStatusSQL + `, lines, expected_at, reference, created_at, updated_at`

// Transfer returns a transfer from the ledger; ok is false when the ledger
// does not have it.
func (l *Ledger) Transfer(ctx context.Context, id string) (t engine.Transfer, ok bool, err error) {
	rows, err := l.pool.Query(ctx, `SELECT `+transferColumns+` FROM transfers WHERE id = $1`, id)
	if err != nil {
		return t, false, fmt.Errorf("transfer %s: %w", id, err)
	}
	ts, err := pgx.CollectRows(rows, scanTransfer)
	if err != nil {
		return t, false, fmt.Errorf("transfer %s: %w", id, err)
	}
	if len(ts) == 0 {
		return t, false, nil
	}
	return ts[0], true, nil
}

// Transfers returns a page of the ledger's transfers in (created, id)
// order after f.Cursor (engine.TransferFilter's "<created ms>:<id>"), of
// f.Store (either end) when set, in f.Status when set, and the cursor of
// the next page ("" at the end). f.Limit must be 1..engine.MaxListLimit.
func (l *Ledger) Transfers(ctx context.Context, f engine.TransferFilter) ([]engine.Transfer, string, error) {
	if f.Limit < 1 || f.Limit > engine.MaxListLimit {
		return nil, "", ErrInvalidLimit
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if f.Cursor != "" {
		ms, id, ok := strings.Cut(f.Cursor, ":")
		n, err := strconv.ParseInt(ms, 10, 64)
		if !ok || err != nil {
			return nil, "", errors.New("cursor: malformed")
		}
		where = append(where, `(created_at, id) > (timestamptz 'epoch' + `+arg(n)+` * interval '1 millisecond', `+arg(id)+`)`)
	}
	if f.Status != "" {
		where = append(where, transferStatusSQL+` = `+arg(f.Status))
	}
	q := `SELECT ` + transferColumns + ` FROM transfers`
	cond := ""
	if len(where) > 0 {
		cond = ` AND ` + strings.Join(where, ` AND `)
	}
	limit := arg(f.Limit + 1)
	if f.Store != "" {
		// one index range per end, merged
		s := arg(f.Store)
		q = `(` + q + ` WHERE to_store = ` + s + cond + ` ORDER BY created_at, id LIMIT ` + limit + `)
UNION
(` + q + ` WHERE from_store = ` + s + cond + ` ORDER BY created_at, id LIMIT ` + limit + `)`
	} else if cond != "" {
		q += ` WHERE ` + strings.TrimPrefix(cond, ` AND `)
	}
	q = `SELECT * FROM (` + q + `) t ORDER BY created_at, id LIMIT ` + limit
	rows, err := l.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list transfers: %w", err)
	}
	ts, err := pgx.CollectRows(rows, scanTransfer)
	if err != nil {
		return nil, "", fmt.Errorf("list transfers: %w", err)
	}
	next := ""
	if len(ts) > f.Limit {
		ts = ts[:f.Limit]
		last := ts[len(ts)-1]
		next = strconv.FormatInt(last.CreatedAt.UnixMilli(), 10) + ":" + last.ID
	}
	return ts, next, nil
}

func scanTransfer(row pgx.CollectableRow) (engine.Transfer, error) {
	var (
		w        engine.TransferRecord
		lines    []byte
		ea       *time.Time
		ref      string
		ca, ua   time.Time
		from, to string
	)
	if err := row.Scan(&w.ID, &from, &to, &w.Status, &lines, &ea, &ref, &ca, &ua); err != nil {
		return engine.Transfer{}, err
	}
	w.From, w.To, w.Reference = from, to, ref
	var skus [][]json.RawMessage
	if err := json.Unmarshal(lines, &skus); err != nil {
		return engine.Transfer{}, fmt.Errorf("transfer %s: lines: %w", w.ID, err)
	}
	for _, l := range skus {
		var tl engine.TransferLine
		if len(l) != 5 {
			return engine.Transfer{}, fmt.Errorf("transfer %s: malformed line", w.ID)
		}
		_ = json.Unmarshal(l[0], &tl.SKU)
		for i, dst := range []*int64{&tl.Qty, &tl.Received, &tl.Damaged, &tl.Missing} {
			if err := json.Unmarshal(l[i+1], dst); err != nil {
				return engine.Transfer{}, fmt.Errorf("transfer %s: lines: %w", w.ID, err)
			}
		}
		w.Lines = append(w.Lines, tl)
	}
	if ea != nil {
		w.ExpectedAt = ea.UnixMilli()
	}
	w.CreatedAt, w.UpdatedAt = ca.UnixMilli(), ua.UnixMilli()
	return w.Transfer(), nil
}
