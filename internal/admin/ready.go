package admin

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Engine is what the readiness checks need of the engine.
type Engine interface {
	// Ping checks that Redis answers.
	Ping(ctx context.Context) error
	// Partitions returns the number of partitions.
	Partitions() int
	// PartitionsNotReady returns those of partitions whose readiness marker
	// is missing.
	PartitionsNotReady(ctx context.Context, partitions []int) ([]int, error)
}

// Pinger checks that a dependency answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Checks are what /readyz looks at. Every field but Engine is optional.
type Checks struct {
	// Engine is pinged (Redis); required.
	Engine Engine
	// Partitions, when set, makes a partition without its readiness marker
	// (Redis lost it, a rebuild is due) a reason not to be ready: the
	// process serves requests that need it.
	Partitions bool
	// Ledger is pinged (PostgreSQL); nil when the ledger is off.
	Ledger Pinger
	// Persister, when set, reports the persister of this process: a
	// partition whose writes keep failing shows as degraded (still ready:
	// the events wait in Redis).
	Persister func() PersisterStats
	// Rebuild, when set, reports the rebuilds of this process: while
	// partitions are not ready, or being rebuilt, the answer shows their
	// progress.
	Rebuild func() RebuildStats
}

// RebuildProgress is the progress of rebuilds in /readyz, shown while
// partitions are not ready or being rebuilt.
type RebuildProgress struct {
	// NotReady counts the partitions without their readiness marker.
	NotReady int `json:"partitions_not_ready"`
	// Rebuilding counts the partitions this process is rebuilding now.
	Rebuilding int64 `json:"partitions_rebuilding"`
	// Rebuilt counts the partitions this process has rebuilt since it
	// started.
	Rebuilt int64 `json:"partitions_rebuilt"`
	// ItemsRestored counts the items restored so far.
	ItemsRestored int64 `json:"items_restored"`
	// Seconds is how long the current round of rebuilds has run.
	Seconds float64 `json:"seconds"`
}

// Readiness is the answer of /readyz.
type Readiness struct {
	// Status is "ready", "degraded" (ready, but a persister partition keeps
	// failing), "not ready" or "shutting down".
	Status string `json:"status"`
	// Checks names each dependency checked and its state: "ok", "off" or
	// what is wrong.
	Checks map[string]string `json:"checks,omitempty"`
	// Degraded lists the failing persister partitions.
	Degraded []FailingPartition `json:"degraded,omitempty"`
	// Rebuild shows the rebuilds' progress while partitions are not ready
	// or being rebuilt (when the process rebuilds).
	Rebuild *RebuildProgress `json:"rebuild,omitempty"`
}

// Readiness statuses.
const (
	StatusReady        = "ready"
	StatusDegraded     = "degraded"
	StatusNotReady     = "not ready"
	StatusShuttingDown = "shutting down"
)

// Code returns the HTTP status of r: 200 when ready or degraded, else 503.
func (r *Readiness) Code() int {
	if r.Status == StatusReady || r.Status == StatusDegraded {
		return http.StatusOK
	}
	return http.StatusServiceUnavailable
}

// ShuttingDown is the answer of /readyz once a shutdown has begun: 503, so
// load balancers stop sending before the process stops accepting.
func ShuttingDown() *Readiness { return &Readiness{Status: StatusShuttingDown} }

// Check runs the checks within ctx and returns the answer; now dates the
// persister's failures.
func (c *Checks) Check(ctx context.Context, now time.Time) *Readiness {
	checks := map[string]string{}
	ok := true
	notReadyCount := 0
	if err := c.Engine.Ping(ctx); err != nil {
		checks["redis"] = "unreachable: " + err.Error()
		ok = false
	} else {
		checks["redis"] = "ok"
		if c.Partitions {
			all := make([]int, c.Engine.Partitions())
			for i := range all {
				all[i] = i
			}
			notReady, err := c.Engine.PartitionsNotReady(ctx, all)
			if err != nil {
				notReady = all // none could be checked
			}
			if len(notReady) > 0 {
				checks["partitions"] = fmt.Sprintf("not ready: %v", notReady)
				notReadyCount = len(notReady)
				ok = false
			} else {
				checks["partitions"] = "ok"
			}
		}
	}
	if c.Ledger == nil {
		checks["postgres"] = "off"
	} else if err := c.Ledger.Ping(ctx); err != nil {
		checks["postgres"] = "unreachable: " + err.Error()
		ok = false
	} else {
		checks["postgres"] = "ok"
	}
	r := &Readiness{Status: StatusReady, Checks: checks}
	if c.Rebuild != nil {
		if st := c.Rebuild(); notReadyCount > 0 || st.Rebuilding > 0 {
			r.Rebuild = &RebuildProgress{NotReady: notReadyCount, Rebuilding: st.Rebuilding, Rebuilt: st.Partitions,
				ItemsRestored: st.Items, Seconds: st.RoundSeconds}
			if notReadyCount > 0 {
				checks["partitions"] += fmt.Sprintf(" (rebuilding %d; %d partitions and %d items restored; %.1fs)",
					st.Rebuilding, st.Partitions, st.Items, st.RoundSeconds)
			}
		}
	}
	if c.Persister != nil {
		if failing := FailingPartitions(c.Persister(), now); len(failing) == 0 {
			checks["persister"] = "ok"
		} else {
			msgs := make([]string, len(failing))
			for i, f := range failing {
				msgs[i] = fmt.Sprintf("partition %d failing for %s: %s", f.Partition, f.FailingFor, f.Error)
			}
			checks["persister"] = "degraded: events wait in Redis; " + strings.Join(msgs, "; ")
			r.Status = StatusDegraded
			r.Degraded = failing
		}
	}
	if !ok {
		r.Status = StatusNotReady
	}
	return r
}

// FailingPartition is a partition whose persister keeps failing, as
// /readyz shows it.
type FailingPartition struct {
	Check        string    `json:"check"`
	Partition    int       `json:"partition"`
	FailingSince time.Time `json:"failing_since"`
	FailingFor   string    `json:"failing_for"`
	Lag          int64     `json:"lag"`
	Error        string    `json:"error"`
}

// FailingPartitions returns the failing partitions of st, in order.
func FailingPartitions(st PersisterStats, now time.Time) []FailingPartition {
	var out []FailingPartition
	for _, p := range st.Partitions {
		if !p.Failing {
			continue
		}
		f := FailingPartition{Check: "persister", Partition: p.Partition, Lag: max(p.Lag, 0), Error: p.Error}
		if !p.FailingSince.IsZero() {
			f.FailingSince = p.FailingSince.UTC()
			f.FailingFor = now.Sub(p.FailingSince).Round(time.Second).String()
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Partition < out[j].Partition })
	return out
}
