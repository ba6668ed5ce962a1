package admin

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Register registers each collector with reg. A collector registered
// already (the same metrics, by another part of the process sharing the
// registry) is passed over; any other conflict is an error.
func Register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				continue
			}
			return err
		}
	}
	return nil
}

// RuntimeCollectors are the Go runtime's and the process's metrics (go_*,
// process_*).
func RuntimeCollectors() []prometheus.Collector {
	return []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}
}

// BuildInfoCollector exports inventory_build_info: 1, with the binary's
// version, revision and Go version as labels.
func BuildInfoCollector(b Build) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "inventory_build_info",
		Help:        "1, labelled with the running binary's module version, VCS revision and Go version.",
		ConstLabels: prometheus.Labels{"version": b.Version, "revision": b.Revision, "goversion": b.GoVersion},
	})
	g.Set(1)
	return g
}

// StreamLengther reports the length of every partition's event stream;
// an entry is negative when its length could not be read.
type StreamLengther interface {
	StreamLengths(ctx context.Context) ([]int64, error)
}

// StreamCollector exports inventory_stream_length{partition}, read at
// scrape time.
func StreamCollector(e StreamLengther) prometheus.Collector {
	return &streamCollector{e: e}
}

var descStreamLength = prometheus.NewDesc("inventory_stream_length", "Entries in each partition's event stream.", []string{"partition"}, nil)

type streamCollector struct{ e StreamLengther }

func (c *streamCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descStreamLength }

func (c *streamCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	lengths, _ := c.e.StreamLengths(ctx)
	for i, n := range lengths {
		if n >= 0 {
			ch <- prometheus.MustNewConstMetric(descStreamLength, prometheus.GaugeValue, float64(n), strconv.Itoa(i))
		}
	}
}

// PersisterStats is what the metrics and /readyz show of a persister.
type PersisterStats struct {
	// Lag is the number of events not yet written to PostgreSQL.
	Lag int64
	// Persisted, Batches, DeadLetters and Errors are running totals.
	Persisted, Batches, DeadLetters, Errors int64
	// LastBatchSize is the size of the last batch written.
	LastBatchSize int64
	// Partitions is each partition's lag and health, exported on /metrics;
	// a failing one shows on /readyz as degraded.
	Partitions []PersisterPartition
	// Downstream is, per downstream consumer group (webhooks, relay) that
	// was ever released from holding the streams' trimming, the times it
	// was, and on how many partitions it holds nothing now.
	Downstream map[string]DownstreamReleases
}

// DownstreamReleases is one downstream group's entry in
// PersisterStats.Downstream.
type DownstreamReleases struct {
	Releases           int64
	ReleasedPartitions int
}

// PersisterPartition is one partition's state in PersisterStats.
type PersisterPartition struct {
	// Partition is the partition's number.
	Partition int
	// Lag is the number of the partition's events not yet written to
	// PostgreSQL (pending in the persister's consumer group or never
	// delivered to it); negative while not measured yet.
	Lag int64
	// Failing is set when the persister's attempts to write the
	// partition's events have kept failing for longer than its threshold:
	// /readyz then shows the partition degraded (still 200).
	Failing bool
	// FailingSince is when those failures began; zero while there are none.
	FailingSince time.Time
	// LastSuccess is when the persister last wrote a batch of the partition
	// or found nothing left to write.
	LastSuccess time.Time
	// Error is the last failure's message.
	Error string
}

// PersisterCollector exports the persister's counters, its lag in all and
// per partition, and which partitions are failing, read from f at scrape
// time.
func PersisterCollector(f func() PersisterStats) prometheus.Collector {
	return &persisterCollector{f: f}
}

type persisterCollector struct {
	f func() PersisterStats
}

var (
	descLag       = prometheus.NewDesc("inventory_persister_lag_events", "Events not yet written to PostgreSQL, all partitions.", nil, nil)
	descPersisted = prometheus.NewDesc("inventory_persister_events_total", "Events written to PostgreSQL.", nil, nil)
	descBatches   = prometheus.NewDesc("inventory_persister_batches_total", "Batches written to PostgreSQL.", nil, nil)
	descDead      = prometheus.NewDesc("inventory_persister_dead_letters_total", "Events moved to the dead-letter stream: unparsable, or refused by PostgreSQL for their content.", nil, nil)
	descErrors    = prometheus.NewDesc("inventory_persister_errors_total", "Failed persister batches.", nil, nil)
	descBatchSize = prometheus.NewDesc("inventory_persister_last_batch_size", "Size of the last batch written.", nil, nil)
	descPartLag   = prometheus.NewDesc("inventory_persister_partition_lag_events",
		"Events of the partition not yet written to PostgreSQL: the persister group's pending entries plus those never delivered.", []string{"partition"}, nil)
	descFailing = prometheus.NewDesc("inventory_persister_failing",
		"1 while the persister's writes of the partition's events have kept failing past its threshold, else 0.", []string{"partition"}, nil)
	descSinceOK = prometheus.NewDesc("inventory_persister_seconds_since_success",
		"Seconds since the persister last wrote a batch of the partition or found nothing left to write.", []string{"partition"}, nil)
	descDownReleases = prometheus.NewDesc("inventory_persister_downstream_releases_total",
		"Times a downstream consumer group stopped holding a partition's trimming: its oldest unacknowledged entry was older than "+
			"INVENTORY_DOWNSTREAM_MAX_LAG, or it had too many unacknowledged; those entries are trimmed and it never reads them.", []string{"group"}, nil)
	descDownReleased = prometheus.NewDesc("inventory_persister_downstream_released_partitions",
		"Partitions of this persister where the downstream consumer group holds no trimming now (released, not caught up yet).", []string{"group"}, nil)
)

func (c *persisterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLag, descPersisted, descBatches, descDead, descErrors, descBatchSize,
		descPartLag, descFailing, descSinceOK, descDownReleases, descDownReleased} {
		ch <- d
	}
}

func (c *persisterCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.f()
	ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(st.Lag))
	ch <- prometheus.MustNewConstMetric(descPersisted, prometheus.CounterValue, float64(st.Persisted))
	ch <- prometheus.MustNewConstMetric(descBatches, prometheus.CounterValue, float64(st.Batches))
	ch <- prometheus.MustNewConstMetric(descDead, prometheus.CounterValue, float64(st.DeadLetters))
	ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(st.Errors))
	ch <- prometheus.MustNewConstMetric(descBatchSize, prometheus.GaugeValue, float64(st.LastBatchSize))
	now := time.Now()
	for _, p := range st.Partitions {
		part := strconv.Itoa(p.Partition)
		if p.Lag >= 0 {
			ch <- prometheus.MustNewConstMetric(descPartLag, prometheus.GaugeValue, float64(p.Lag), part)
		}
		failing := 0.0
		if p.Failing {
			failing = 1
		}
		ch <- prometheus.MustNewConstMetric(descFailing, prometheus.GaugeValue, failing, part)
		if !p.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(descSinceOK, prometheus.GaugeValue, max(now.Sub(p.LastSuccess).Seconds(), 0), part)
		}
	}
	for g, d := range st.Downstream {
		ch <- prometheus.MustNewConstMetric(descDownReleases, prometheus.CounterValue, float64(d.Releases), g)
		ch <- prometheus.MustNewConstMetric(descDownReleased, prometheus.GaugeValue, float64(d.ReleasedPartitions), g)
	}
}

// ReconcilerStats is what the metrics show of a reconciler.
type ReconcilerStats struct {
	// Runs counts finished runs by mode ("check", "repair") and outcome:
	// "clean" (nothing found), "drift" (findings) or "failed" (the run
	// stopped on an error).
	Runs map[RunKey]int64
	// Findings counts the runs' findings by kind (redis_missing,
	// redis_behind, …), every kind present, zero included.
	Findings map[string]int64
	// ItemsChecked counts the items the runs compared.
	ItemsChecked int64
	// LastRun is when the last run finished; zero before the first.
	LastRun time.Time
	// Running is true while a run is in progress; the Run fields follow
	// it (or, between runs, tell about the last one).
	Running bool
	// RunPartitions and RunPartitionsDone count the run's partitions and
	// those finished; RunItemsChecked the items compared so far;
	// RunSeconds how long it has run.
	RunPartitions, RunPartitionsDone int
	RunItemsChecked                  int64
	RunSeconds                       float64
}

// RunKey labels a count of reconciliation runs.
type RunKey struct{ Mode, Outcome string }

// ReconcilerCollector exports the reconciler's runs and findings, read
// from f at scrape time.
func ReconcilerCollector(f func() ReconcilerStats) prometheus.Collector {
	return &reconcilerCollector{f: f}
}

var (
	descRuns = prometheus.NewDesc("inventory_reconciler_runs_total",
		"Reconciliation runs finished by this process, by mode (check, repair) and outcome (clean, drift, failed, cancelled).", []string{"mode", "outcome"}, nil)
	descFindings = prometheus.NewDesc("inventory_reconciler_findings_total",
		"Differences between Redis and the ledger found by this process's reconciliation runs, by kind.", []string{"kind"}, nil)
	descChecked = prometheus.NewDesc("inventory_reconciler_items_checked_total",
		"Items compared by this process's reconciliation runs.", nil, nil)
	descLastRun = prometheus.NewDesc("inventory_reconciler_last_run_timestamp_seconds",
		"Unix time at which this process's last reconciliation run finished (absent before the first).", nil, nil)
	descRunning = prometheus.NewDesc("inventory_reconciler_running",
		"1 while this process runs a reconciliation, else 0.", nil, nil)
	descRunChecked = prometheus.NewDesc("inventory_reconciler_run_items_checked",
		"Items the reconciliation run in progress (or the last one) has compared so far.", nil, nil)
	descRunParts = prometheus.NewDesc("inventory_reconciler_run_partitions",
		"Partitions of the reconciliation run in progress (or the last one), by state: done or total.", []string{"state"}, nil)
	descRunSeconds = prometheus.NewDesc("inventory_reconciler_run_seconds",
		"How long the reconciliation run in progress has run, or how long the last one ran.", nil, nil)
)

type reconcilerCollector struct{ f func() ReconcilerStats }

func (c *reconcilerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRuns, descFindings, descChecked, descLastRun, descRunning, descRunChecked, descRunParts, descRunSeconds} {
		ch <- d
	}
}

func (c *reconcilerCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.f()
	keys := make([]RunKey, 0, len(st.Runs))
	for k := range st.Runs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].Mode < keys[j].Mode || keys[i].Mode == keys[j].Mode && keys[i].Outcome < keys[j].Outcome
	})
	for _, k := range keys {
		ch <- prometheus.MustNewConstMetric(descRuns, prometheus.CounterValue, float64(st.Runs[k]), k.Mode, k.Outcome)
	}
	for kind, n := range st.Findings {
		ch <- prometheus.MustNewConstMetric(descFindings, prometheus.CounterValue, float64(n), kind)
	}
	ch <- prometheus.MustNewConstMetric(descChecked, prometheus.CounterValue, float64(st.ItemsChecked))
	if !st.LastRun.IsZero() {
		ch <- prometheus.MustNewConstMetric(descLastRun, prometheus.GaugeValue, float64(st.LastRun.UnixMilli())/1000)
	}
	running := 0.0
	if st.Running {
		running = 1
	}
	ch <- prometheus.MustNewConstMetric(descRunning, prometheus.GaugeValue, running)
	ch <- prometheus.MustNewConstMetric(descRunChecked, prometheus.GaugeValue, float64(st.RunItemsChecked))
	ch <- prometheus.MustNewConstMetric(descRunParts, prometheus.GaugeValue, float64(st.RunPartitionsDone), "done")
	ch <- prometheus.MustNewConstMetric(descRunParts, prometheus.GaugeValue, float64(st.RunPartitions), "total")
	ch <- prometheus.MustNewConstMetric(descRunSeconds, prometheus.GaugeValue, st.RunSeconds)
}

// RebuildStats is what the metrics show of the rebuilds of partitions from
// the ledger.
type RebuildStats struct {
	// Partitions counts partitions rebuilt.
	Partitions int64
	// Items and Reservations count the items and open reservations
	// restored into Redis, as they are restored.
	Items, Reservations int64
	// Rebuilding counts the partitions being rebuilt now.
	Rebuilding int64
	// Seconds is the time spent rebuilding partitions, summed over them.
	Seconds float64
	// RoundSeconds is how long the current round of rebuilds has run, or,
	// between rounds, how long the last one took until every partition of
	// it was ready.
	RoundSeconds float64
}

// RebuildCollector exports the process's rebuilds, read from f at scrape
// time.
func RebuildCollector(f func() RebuildStats) prometheus.Collector {
	return &rebuildCollector{f: f}
}

var (
	descRebuilt = prometheus.NewDesc("inventory_rebuild_partitions_total",
		"Partitions this process rebuilt from the ledger after Redis lost them.", nil, nil)
	descRestoredItems = prometheus.NewDesc("inventory_rebuild_items_restored_total",
		"Items restored into Redis from the ledger by this process's rebuilds.", nil, nil)
	descRestoredHolds = prometheus.NewDesc("inventory_rebuild_reservations_restored_total",
		"Open reservations restored into Redis from the ledger by this process's rebuilds.", nil, nil)
	descRebuilding = prometheus.NewDesc("inventory_rebuild_partitions_in_progress",
		"Partitions this process is rebuilding from the ledger now.", nil, nil)
	descRebuildSeconds = prometheus.NewDesc("inventory_rebuild_seconds_total",
		"Seconds this process spent rebuilding partitions, summed over partitions rebuilt at once.", nil, nil)
	descRoundSeconds = prometheus.NewDesc("inventory_rebuild_round_seconds",
		"Seconds since the current round of rebuilds began (every partition found not ready at once), or how long the last round took until all of them were ready.", nil, nil)
)

type rebuildCollector struct{ f func() RebuildStats }

func (c *rebuildCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRebuilt
	ch <- descRestoredItems
	ch <- descRestoredHolds
	ch <- descRebuilding
	ch <- descRebuildSeconds
	ch <- descRoundSeconds
}

func (c *rebuildCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.f()
	ch <- prometheus.MustNewConstMetric(descRebuilt, prometheus.CounterValue, float64(st.Partitions))
	ch <- prometheus.MustNewConstMetric(descRestoredItems, prometheus.CounterValue, float64(st.Items))
	ch <- prometheus.MustNewConstMetric(descRestoredHolds, prometheus.CounterValue, float64(st.Reservations))
	ch <- prometheus.MustNewConstMetric(descRebuilding, prometheus.GaugeValue, float64(st.Rebuilding))
	ch <- prometheus.MustNewConstMetric(descRebuildSeconds, prometheus.CounterValue, st.Seconds)
	ch <- prometheus.MustNewConstMetric(descRoundSeconds, prometheus.GaugeValue, st.RoundSeconds)
}
