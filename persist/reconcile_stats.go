package persist

import (
	"errors"
	"sort"
	"sync"
	"time"
)

// runKinds are the kinds of finding a reconciliation run reports (KindHeldBack
// is the persister's alone), so that a count of each starts at zero.
var runKinds = []string{KindRedisMissing, KindRedisBehind, KindRedisAhead, KindCorrupt, KindPartitionNotReady,
	KindPersisterFailing, KindFork, KindOversold, KindLedgerGap, KindTransferDrift, KindTransferMissing}

// Run outcomes in ReconcilerStats.
const (
	// OutcomeClean: the run finished and found nothing.
	OutcomeClean = "clean"
	// OutcomeDrift: the run finished with findings.
	OutcomeDrift = "drift"
	// OutcomeFailed: the run stopped on an error (its partial report is
	// recorded).
	OutcomeFailed = "failed"
	// OutcomeCancelled: the run was cancelled (its partial report is
	// recorded).
	OutcomeCancelled = "cancelled"
)

// RunCount is the number of runs of one mode and outcome, in
// ReconcilerStats.
type RunCount struct {
	Mode    Mode   `json:"mode"`
	Outcome string `json:"outcome"`
	Runs    int64  `json:"runs"`
}

// ReconcilerStats are a Reconciler's counters since it was made: the runs
// made by this Reconciler (periodic or on demand), in this process.
type ReconcilerStats struct {
	// Runs counts finished runs by mode and outcome (OutcomeClean,
	// OutcomeDrift, OutcomeFailed); a run refused because another held the
	// lock is not counted.
	Runs []RunCount `json:"runs"`
	// Findings counts the runs' findings by kind; every kind a run reports
	// is present, zero included.
	Findings map[string]int64 `json:"findings"`
	// ItemsChecked counts the items the runs compared.
	ItemsChecked int64 `json:"items_checked"`
	// LastRun is when the last run finished; zero before the first.
	LastRun time.Time `json:"last_run"`
	// Rebuilds are the rebuilds of partitions that repair runs made
	// (partition_not_ready).
	Rebuilds RebuilderStats `json:"rebuilds"`
	// Run is the progress of the run in progress, or of the last one.
	Run RunProgress `json:"run"`
}

type runKey struct {
	mode    Mode
	outcome string
}

// reconcilerCounters are a Reconciler's counters, under mu.
type reconcilerCounters struct {
	mu       sync.Mutex
	runs     map[runKey]int64
	findings map[string]int64
	checked  int64
	lastRun  time.Time
}

// count adds a finished run to the counters.
func (c *reconcilerCounters) count(rep *Report, runErr error) {
	outcome := OutcomeClean
	switch {
	case errors.Is(runErr, ErrReconcileCancelled):
		outcome = OutcomeCancelled
	case runErr != nil:
		outcome = OutcomeFailed
	case len(rep.Findings) > 0:
		outcome = OutcomeDrift
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.runs == nil {
		c.runs = map[runKey]int64{}
		c.findings = map[string]int64{}
	}
	c.runs[runKey{rep.Mode, outcome}]++
	for _, f := range rep.Findings {
		c.findings[f.Kind]++
	}
	c.checked += rep.ItemsChecked
	c.lastRun = rep.FinishedAt
}

// Stats returns a snapshot of the Reconciler's counters. Safe for
// concurrent use.
func (r *Reconciler) Stats() ReconcilerStats {
	c := &r.counters
	c.mu.Lock()
	st := ReconcilerStats{Findings: make(map[string]int64, len(runKinds)), ItemsChecked: c.checked, LastRun: c.lastRun}
	for _, k := range runKinds {
		st.Findings[k] = 0
	}
	for k, n := range c.findings {
		st.Findings[k] = n
	}
	for k, n := range c.runs {
		st.Runs = append(st.Runs, RunCount{Mode: k.mode, Outcome: k.outcome, Runs: n})
	}
	c.mu.Unlock()
	sort.Slice(st.Runs, func(i, j int) bool {
		a, b := st.Runs[i], st.Runs[j]
		return a.Mode < b.Mode || a.Mode == b.Mode && a.Outcome < b.Outcome
	})
	st.Rebuilds = r.rb.Stats()
	st.Run = r.progress.snapshot()
	return st
}
