package persist

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shelfline/inventory/engine"
)

// PartitionState is one partition as the operations view shows it.
type PartitionState struct {
	Partition int  `json:"partition"`
	Ready     bool `json:"ready"`
	// ReadySince is when the partition was last marked ready (by its last
	// rebuild, or the first start); null while it is not ready.
	ReadySince *time.Time `json:"ready_since"`
	// Lag counts the events the persister has not acknowledged yet; -1
	// when its consumer group does not exist (no persister ran yet).
	Lag          int64 `json:"lag"`
	StreamLength int64 `json:"stream_length"`
	DeadLetters  int64 `json:"dead_letters"`
}

// DeadLetterInfo is a dead letter as the operations view lists it.
type DeadLetterInfo struct {
	Partition int    `json:"partition"`
	EntryID   string `json:"entry_id"`
	Error     string `json:"error"`
	Consumer  string `json:"consumer"`
}

// RunRecord is a reconciliation run as recorded in reconciliation_runs.
type RunRecord struct {
	ID           int64      `json:"id"`
	Mode         string     `json:"mode"`
	StartedAt    time.Time  `json:"started_at"`
	FinishedAt   *time.Time `json:"finished_at"`
	ItemsChecked int64      `json:"items_checked"`
	Lagging      int64      `json:"lagging"`
	Findings     int64      `json:"findings"`
	Error        string     `json:"error"`
}

// Overview is the state of a deployment for its operators.
type Overview struct {
	Partitions []PartitionState `json:"partitions"`
	// DeadLetters lists the newest dead letters (at most 5 per partition).
	DeadLetters []DeadLetterInfo `json:"dead_letters"`
	// Runs are the newest reconciliation runs, newest first.
	Runs []RunRecord `json:"runs"`
	// OpenFindings counts the inbox's open findings.
	OpenFindings int64 `json:"open_findings"`
	// Rebuilds counts the partition rebuilds this process made; null when
	// it makes none.
	Rebuilds *RebuilderStats `json:"rebuilds"`
}

// OperationsConfig configures an Operations.
type OperationsConfig struct {
	// Group is the persister's consumer group. Defaults to "persister".
	Group string
	// Rebuilds, when set, reports the rebuilds of this process.
	Rebuilds func() RebuilderStats
	// Runs is how many reconciliation runs Overview lists. Defaults to 20.
	Runs int
}

// Operations reads the state of the partitions (Redis, through the engine)
// and of the reconciler (the ledger) for the operations view. It is safe
// for concurrent use.
type Operations struct {
	e    *engine.Engine
	pool *pgxpool.Pool
	cfg  OperationsConfig
}

// NewOperations returns the Operations of e and the ledger in pool.
func NewOperations(e *engine.Engine, pool *pgxpool.Pool, cfg OperationsConfig) *Operations {
	if cfg.Group == "" {
		cfg.Group = "persister"
	}
	if cfg.Runs == 0 {
		cfg.Runs = 20
	}
	return &Operations{e: e, pool: pool, cfg: cfg}
}

const (
	runsSQL = `SELECT id, mode, started_at, finished_at, items_checked, lagging, findings, error
FROM reconciliation_runs ORDER BY id DESC LIMIT $1`
	openFindingsSQL = `SELECT count(*) FROM (` + inboxSQL + `) x WHERE x.outcome IS NULL`
	// deadLettersShown is how many dead letters per partition Overview lists.
	deadLettersShown = 5
)

// Overview returns the deployment's state now.
func (o *Operations) Overview(ctx context.Context) (*Overview, error) {
	n := o.e.Partitions()
	ov := &Overview{Partitions: make([]PartitionState, n), DeadLetters: []DeadLetterInfo{}}
	lengths, err := o.e.StreamLengths(ctx)
	if err != nil {
		return nil, fmt.Errorf("operations: %w", err)
	}
	for p := 0; p < n; p++ {
		ps := &ov.Partitions[p]
		ps.Partition, ps.StreamLength, ps.Lag = p, lengths[p], -1
		epoch, err := o.e.ReadyEpoch(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("operations: partition %d: %w", p, err)
		}
		if epoch != "" {
			ps.Ready = true
			if ms, err := strconv.ParseInt(epoch, 10, 64); err == nil {
				t := time.UnixMilli(ms).UTC()
				ps.ReadySince = &t
			}
		}
		gs, ok, err := o.e.GroupState(ctx, p, o.cfg.Group)
		if err != nil {
			return nil, fmt.Errorf("operations: partition %d: %w", p, err)
		}
		if ok {
			ps.Lag = gs.Unacked
		}
		var recent []DeadLetterInfo
		err = o.e.ScanDeadLetters(ctx, p, 500, func(dls []engine.DeadLetter) error {
			ps.DeadLetters += int64(len(dls))
			for _, d := range dls {
				recent = append(recent, DeadLetterInfo{Partition: p, EntryID: d.EntryID, Error: d.Error, Consumer: d.Consumer})
			}
			if len(recent) > deadLettersShown {
				recent = recent[len(recent)-deadLettersShown:]
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("operations: partition %d: dead letters: %w", p, err)
		}
		ov.DeadLetters = append(ov.DeadLetters, recent...)
	}
	rows, err := o.pool.Query(ctx, runsSQL, o.cfg.Runs)
	if err != nil {
		return nil, fmt.Errorf("operations: runs: %w", err)
	}
	ov.Runs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (RunRecord, error) {
		var rr RunRecord
		err := r.Scan(&rr.ID, &rr.Mode, &rr.StartedAt, &rr.FinishedAt, &rr.ItemsChecked, &rr.Lagging, &rr.Findings, &rr.Error)
		rr.StartedAt = rr.StartedAt.UTC()
		if rr.FinishedAt != nil {
			t := rr.FinishedAt.UTC()
			rr.FinishedAt = &t
		}
		return rr, err
	})
	if err != nil {
		return nil, fmt.Errorf("operations: runs: %w", err)
	}
	if ov.Runs == nil {
		ov.Runs = []RunRecord{}
	}
	if err := o.pool.QueryRow(ctx, openFindingsSQL, InboxKinds).Scan(&ov.OpenFindings); err != nil {
		return nil, fmt.Errorf("operations: open findings: %w", err)
	}
	if o.cfg.Rebuilds != nil {
		st := o.cfg.Rebuilds()
		ov.Rebuilds = &st
	}
	return ov, nil
}
