package persist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shelfline/inventory/engine"
)

// InboxKinds are the kinds of finding a person must decide on: the
// reconciler cannot tell the right stock (oversold after a fork: both
// histories sold the same units; corrupt: the numbers disagree at one
// version; ledger_gap: versions lost from the ledger).
var InboxKinds = []string{KindOversold, KindCorrupt, KindLedgerGap}

// Inbox outcomes.
const (
	OutcomeResolved  = "resolved"
	OutcomeDismissed = "dismissed"
)

// MaxNote bounds a resolution's note, in characters.
const MaxNote = 2000

var (
	// ErrFindingNotFound: no inbox finding has the id.
	ErrFindingNotFound = errors.New("no such finding")
	// ErrFindingClosed: the finding was resolved or dismissed already.
	ErrFindingClosed = errors.New("the finding was resolved or dismissed already")
)

// InboxFinding is a finding of the conflict inbox: the newest report of one
// kind, item and version, with how many reports there were and, once a
// person decided, the resolution.
type InboxFinding struct {
	ID      int64  `json:"id"`
	RunID   *int64 `json:"run_id"`
	Kind    string `json:"kind"`
	Store   string `json:"store"`
	SKU     string `json:"sku"`
	Version int64  `json:"version"`
	// Before and After are the states the finding recorded (for oversold:
	// the merged state that broke the invariants and the clamped one).
	Before  json.RawMessage `json:"before"`
	After   json.RawMessage `json:"after"`
	Action  string          `json:"action"`
	Detail  string          `json:"detail"`
	FoundAt time.Time       `json:"found_at"`
	Reports int64           `json:"reports"`
	// Status is "open", "resolved" or "dismissed".
	Status     string      `json:"status"`
	Resolution *Resolution `json:"resolution"`
}

// Resolution is what a person decided about a finding.
type Resolution struct {
	Outcome string `json:"outcome"`
	Note    string `json:"note"`
	// Delta and EventVersion are the correcting adjustment and the version
	// of its ledger event; null for a dismissal.
	Delta        *int64    `json:"delta"`
	EventVersion *int64    `json:"event_version"`
	Principal    string    `json:"principal"`
	ResolvedAt   time.Time `json:"resolved_at"`
}

// Inbox lists the findings that need a person and records their
// decisions: a correcting adjustment through the engine (an ADJUST event in
// the ledger) with a note, or a dismissal with a note. It is safe for
// concurrent use; two people deciding on one finding at once are
// serialised, and the second gets ErrFindingClosed.
type Inbox struct {
	e    *engine.Engine
	pool *pgxpool.Pool
}

// NewInbox returns the inbox of the ledger in pool; e makes the correcting
// adjustments.
func NewInbox(e *engine.Engine, pool *pgxpool.Pool) *Inbox { return &Inbox{e: e, pool: pool} }

// inboxSQL selects the newest report of each kind, item and version, with
// the number of reports and the resolution that covers them, if any.
const inboxSQL = `WITH g AS (
  SELECT DISTINCT ON (f.kind, f.store_id, f.sku, f.version)
         f.id, f.run_id, f.kind, f.store_id, f.sku, f.version, f.before, f.after, f.action, f.detail, f.found_at,
         count(*) OVER (PARTITION BY f.kind, f.store_id, f.sku, f.version) AS reports
  FROM drift_findings f
  WHERE f.kind = ANY($1)
  ORDER BY f.kind, f.store_id, f.sku, f.version, f.id DESC
)
SELECT g.id, g.run_id, g.kind, g.store_id, g.sku, g.version, g.before, g.after, g.action, g.detail, g.found_at, g.reports,
       r.outcome, r.note, r.delta, r.event_version, r.principal, r.resolved_at
FROM g LEFT JOIN LATERAL (
  SELECT r.* FROM finding_resolutions r JOIN drift_findings d ON d.id = r.finding_id
  WHERE d.kind = g.kind AND d.store_id = g.store_id AND d.sku = g.sku AND d.version = g.version
  ORDER BY r.resolved_at DESC LIMIT 1
) r ON true`

const (
	listInboxSQL = inboxSQL + `
WHERE ($2 = 'all' OR ($2 = 'open') = (r.outcome IS NULL))
ORDER BY g.found_at DESC, g.id DESC LIMIT $3`
	// oneFindingSQL reads the group of finding $2: any report of it names it.
	oneFindingSQL = `WITH t AS (SELECT kind, store_id, sku, version FROM drift_findings WHERE id = $2 AND kind = ANY($1)),
x AS (` + inboxSQL + `)
SELECT x.* FROM x JOIN t ON x.kind = t.kind AND x.store_id = t.store_id AND x.sku = t.sku AND x.version = t.version`
	// lockFindingSQL serialises the decisions on one finding's group (its
	// kind, item and version) for the transaction.
	lockFindingSQL = `SELECT pg_advisory_xact_lock(hashtextextended('inbox:' || current_schema() || ':' || kind || '/' || store_id || '/' || sku || '/' || version, 0))
FROM drift_findings WHERE id = $1 AND kind = ANY($2)`
	insertDecisionSQL = `INSERT INTO finding_resolutions (finding_id, outcome, note, delta, event_version, principal) VALUES ($1, $2, $3, $4, $5, $6)`
)

func scanInbox(row pgx.Row) (InboxFinding, error) {
	var (
		f                    InboxFinding
		outcome, note, princ *string
		delta, eventV        *int64
		resolvedAt           *time.Time
		before, after        []byte
	)
	err := row.Scan(&f.ID, &f.RunID, &f.Kind, &f.Store, &f.SKU, &f.Version, &before, &after, &f.Action, &f.Detail, &f.FoundAt, &f.Reports,
		&outcome, &note, &delta, &eventV, &princ, &resolvedAt)
	if err != nil {
		return f, err
	}
	f.Before, f.After = rawOrNull(before), rawOrNull(after)
	f.FoundAt = f.FoundAt.UTC()
	f.Status = "open"
	if outcome != nil {
		f.Status = *outcome
		f.Resolution = &Resolution{Outcome: *outcome, Note: *note, Delta: delta, EventVersion: eventV, Principal: *princ, ResolvedAt: resolvedAt.UTC()}
	}
	return f, nil
}

func rawOrNull(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return json.RawMessage(b)
}

// List returns up to limit (1..MaxHistoryLimit) inbox findings, newest
// first: status "open" (no decision yet), "closed" (resolved or
// dismissed) or "all".
func (in *Inbox) List(ctx context.Context, status string, limit int) ([]InboxFinding, error) {
	if limit < 1 || limit > MaxHistoryLimit {
		return nil, ErrInvalidLimit
	}
	switch status {
	case "open", "closed", "all":
	default:
		return nil, &engine.ValidationError{Field: "status", Msg: "must be open, closed or all"}
	}
	rows, err := in.pool.Query(ctx, listInboxSQL, InboxKinds, status, limit)
	if err != nil {
		return nil, fmt.Errorf("inbox: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (InboxFinding, error) { return scanInbox(r) })
	if err != nil {
		return nil, fmt.Errorf("inbox: %w", err)
	}
	if out == nil {
		out = []InboxFinding{}
	}
	return out, nil
}

// Get returns the inbox finding that the report id belongs to. Errors:
// ErrFindingNotFound.
func (in *Inbox) Get(ctx context.Context, id int64) (InboxFinding, error) {
	return in.get(ctx, in.pool, id)
}

func (in *Inbox) get(ctx context.Context, q querier, id int64) (InboxFinding, error) {
	f, err := scanInbox(q.QueryRow(ctx, oneFindingSQL, InboxKinds, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return f, ErrFindingNotFound
	}
	if err != nil {
		return f, fmt.Errorf("inbox finding %d: %w", id, err)
	}
	return f, nil
}

func validNote(note string) error {
	if strings.TrimSpace(note) == "" {
		return &engine.ValidationError{Field: "note", Msg: "say what was decided and why"}
	}
	if !utf8.ValidString(note) || strings.ContainsRune(note, 0) || utf8.RuneCountInString(note) > MaxNote {
		return &engine.ValidationError{Field: "note", Msg: "must be text of at most " + strconv.Itoa(MaxNote) + " characters"}
	}
	return nil
}

// Dismiss closes the finding with a note and no change to stock. Errors:
// *engine.ValidationError (note), ErrFindingNotFound, ErrFindingClosed.
func (in *Inbox) Dismiss(ctx context.Context, id int64, note, principal string) (InboxFinding, error) {
	if err := validNote(note); err != nil {
		return InboxFinding{}, err
	}
	return in.decide(ctx, id, func(tx pgx.Tx, f *InboxFinding) error {
		_, err := tx.Exec(ctx, insertDecisionSQL, id, OutcomeDismissed, note, nil, nil, principal)
		return err
	})
}

// InboxPrincipal is the principal of the correcting adjustments: their
// idempotency keys are scoped by it, not by the person, so the retry of a
// resolution, by whoever makes it, never adjusts twice. The ledger event's
// reason names the finding and the person; the resolution records both.
const InboxPrincipal = "inbox"

// Resolve closes the finding with a correcting adjustment of its item's
// on_hand by delta (an ADJUST event in the ledger, whose reason names the
// finding and the person) and a note. The adjustment runs under an
// operation id made from the finding's id, while the finding is locked: a
// retry after a failure between the adjustment and its record replays the
// adjustment instead of applying it again. Errors: *engine.ValidationError
// (note, delta), ErrFindingNotFound, ErrFindingClosed, and the engine's
// errors of an adjustment (ErrNotFound, *InsufficientStockError, …;
// ErrIdempotencyMismatch when an earlier attempt adjusted by another delta
// and failed to record it).
func (in *Inbox) Resolve(ctx context.Context, id, delta int64, note, principal string) (InboxFinding, error) {
	if err := validNote(note); err != nil {
		return InboxFinding{}, err
	}
	if delta == 0 {
		return InboxFinding{}, &engine.ValidationError{Field: "delta", Msg: "a resolution adjusts stock; dismiss a finding that needs no change"}
	}
	return in.decide(ctx, id, func(tx pgx.Tx, f *InboxFinding) error {
		reason := fmt.Sprintf("finding %d (%s) resolved by %s: %s", f.ID, f.Kind, principal, note)
		if utf8.RuneCountInString(reason) > 256 {
			reason = string([]rune(reason)[:255]) + "…"
		}
		r, err := in.e.Adjust(ctx, engine.AdjustRequest{Store: f.Store, SKU: f.SKU, Delta: delta, Reason: reason}, ResolutionOp(f.ID, delta))
		if err != nil {
			return fmt.Errorf("resolve finding %d: adjust %s/%s: %w", f.ID, f.Store, f.SKU, err)
		}
		_, err = tx.Exec(ctx, insertDecisionSQL, id, OutcomeResolved, note, delta, r.Item.Version, principal)
		return err
	})
}

// ResolutionOp is the operation of the correcting adjustment of finding
// id by delta: its key is the finding's, its fingerprint the finding and the
// delta (not the reason, which names the person), so any retry of the same
// resolution replays and one with another delta is refused.
func ResolutionOp(id, delta int64) engine.Op {
	return engine.Op{IdempotencyKey: "inbox-finding-" + strconv.FormatInt(id, 10), Principal: InboxPrincipal,
		Fingerprint: "inbox-resolve " + strconv.FormatInt(id, 10) + " " + strconv.FormatInt(delta, 10)}
}

// decide locks finding id, checks that it is open, runs record in the
// transaction, commits, and returns the finding as it is now.
func (in *Inbox) decide(ctx context.Context, id int64, record func(pgx.Tx, *InboxFinding) error) (InboxFinding, error) {
	tx, err := in.pool.Begin(ctx)
	if err != nil {
		return InboxFinding{}, fmt.Errorf("inbox: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.Exec(ctx, lockFindingSQL, id, InboxKinds); err != nil {
		return InboxFinding{}, fmt.Errorf("inbox: lock finding %d: %w", id, err)
	}
	f, err := in.get(ctx, tx, id)
	if err != nil {
		return f, err
	}
	if f.Status != "open" {
		return f, ErrFindingClosed
	}
	// The report decided on is the one named; its group is closed with it.
	f.ID = id
	if err := record(tx, &f); err != nil {
		return InboxFinding{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return InboxFinding{}, fmt.Errorf("inbox: record the decision on finding %d: %w", id, err)
	}
	return in.Get(ctx, id)
}
