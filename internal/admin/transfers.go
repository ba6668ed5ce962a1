package admin

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TransferSteps is what the transfer metrics read: the engine's pending
// transfer steps per partition, and how many of them are overdue.
type TransferSteps interface {
	PendingTransferSteps(ctx context.Context) (pending, stuck []int64, err error)
}

// TransferCollector exports, at each scrape, the transfer steps waiting for
// their second half (inventory_transfer_steps_pending) and those overdue
// for a TransferWorker (inventory_transfer_steps_stuck): a stuck step that
// stays means no worker runs, or its partitions cannot be written.
func TransferCollector(e TransferSteps) prometheus.Collector { return &transferCollector{e: e} }

var (
	descTransferPending = prometheus.NewDesc("inventory_transfer_steps_pending",
		"Transfer steps waiting for their second half (expect after ship, return after cancel).", nil, nil)
	descTransferStuck = prometheus.NewDesc("inventory_transfer_steps_stuck",
		"Transfer steps whose second half is overdue: left to a transfer worker and not finished yet.", nil, nil)
)

type transferCollector struct{ e TransferSteps }

func (c *transferCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTransferPending
	ch <- descTransferStuck
}

func (c *transferCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	pending, stuck, err := c.e.PendingTransferSteps(ctx)
	if err != nil {
		return
	}
	var p, s int64
	for i := range pending {
		p += pending[i]
		s += stuck[i]
	}
	ch <- prometheus.MustNewConstMetric(descTransferPending, prometheus.GaugeValue, float64(p))
	ch <- prometheus.MustNewConstMetric(descTransferStuck, prometheus.GaugeValue, float64(s))
}
