package main

import (
	"context"
	"fmt"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/shelfline/inventory/internal/admin"
	"github.com/shelfline/inventory/persist"
)

// adminEndpoint is a process's admin address (INVENTORY_ADMIN_ADDR): bound
// first, so that a taken port stops the process before it connects to
// anything, and served once the process is wired. Its zero value, for an
// admin address turned off, does nothing.
type adminEndpoint struct {
	ln   net.Listener
	srv  *admin.Server
	stop context.CancelFunc
	done chan error
}

// listenAdmin binds addr, unless it turns the admin address off.
func listenAdmin(addr string) (*adminEndpoint, error) {
	if adminOff(addr) {
		return &adminEndpoint{}, nil
	}
	ln, err := admin.Listen(addr)
	if err != nil {
		return nil, fmt.Errorf("INVENTORY_ADMIN_ADDR / --admin-addr (off turns it off): %w", err)
	}
	return &adminEndpoint{ln: ln}, nil
}

// serve starts serving cfg's routes. When the server stops on its own
// (it failed), failed is called.
func (a *adminEndpoint) serve(cfg admin.Config, log *zap.Logger, failed func(error)) error {
	if a.ln == nil {
		log.Info("admin address off: no /metrics, /healthz or /readyz for this process")
		return nil
	}
	cfg.Logger = log.Named("admin")
	srv, err := admin.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(context.Background())
	a.srv, a.stop, a.done = srv, stop, make(chan error, 1)
	log.Info("admin address listening", zap.String(logAddr, "http://"+a.ln.Addr().String()))
	go func() {
		err := srv.Serve(ctx, a.ln)
		if err != nil && ctx.Err() == nil {
			failed(err)
		}
		a.done <- err
	}()
	return nil
}

// beginShutdown makes /readyz answer 503.
func (a *adminEndpoint) beginShutdown() {
	if a.srv != nil {
		a.srv.BeginShutdown()
	}
}

// close stops the server, or closes the listener it never served, and
// returns the server's error. Harmless twice.
func (a *adminEndpoint) close() error {
	switch {
	case a.srv != nil:
		a.stop()
		err := <-a.done
		a.srv, a.ln = nil, nil
		return err
	case a.ln != nil:
		err := a.ln.Close()
		a.ln = nil
		return err
	}
	return nil
}

// newRegistry returns a process's own metrics registry, holding
// inventory_build_info and the Go runtime's and the process's metrics.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	_ = admin.Register(reg, admin.BuildInfoCollector(build()))
	_ = admin.Register(reg, admin.RuntimeCollectors()...)
	return reg
}

// persisterStats serves the admin package's collectors and checks with a
// persister's stats.
func persisterStats(p *persist.Persister) func() admin.PersisterStats {
	return func() admin.PersisterStats {
		st := p.Stats()
		out := admin.PersisterStats{Persisted: st.EventsPersisted, Batches: st.Batches, DeadLetters: st.DeadLetters,
			Errors: st.WriteErrors, LastBatchSize: st.LastBatchSize}
		for _, n := range st.Lag {
			out.Lag += n
		}
		for part, ps := range st.Partitions {
			hp := admin.PersisterPartition{Partition: part, Lag: ps.Lag, Failing: ps.Failing, LastSuccess: ps.LastSuccess, Error: ps.LastError}
			if ps.FailingSince != nil {
				hp.FailingSince = *ps.FailingSince
			}
			out.Partitions = append(out.Partitions, hp)
		}
		for g, ds := range st.Downstream {
			if out.Downstream == nil {
				out.Downstream = map[string]admin.DownstreamReleases{}
			}
			out.Downstream[g] = admin.DownstreamReleases{Releases: ds.Releases, ReleasedPartitions: len(ds.Released)}
		}
		return out
	}
}

// reconcilerStats serves the reconciler collector with a reconciler's
// stats.
func reconcilerStats(r *persist.Reconciler) func() admin.ReconcilerStats {
	return func() admin.ReconcilerStats {
		st := r.Stats()
		out := admin.ReconcilerStats{Runs: map[admin.RunKey]int64{}, Findings: st.Findings, ItemsChecked: st.ItemsChecked, LastRun: st.LastRun,
			Running: st.Run.Running, RunPartitions: st.Run.Partitions, RunPartitionsDone: st.Run.PartitionsDone,
			RunItemsChecked: st.Run.ItemsChecked, RunSeconds: st.Run.Seconds}
		for _, rc := range st.Runs {
			out.Runs[admin.RunKey{Mode: string(rc.Mode), Outcome: rc.Outcome}] = rc.Runs
		}
		return out
	}
}

// rebuildStats serves the rebuild collector with the sum of the
// rebuilds the given sources made (the rebuilder, the reconciler's repair
// runs).
// sumRebuilds adds up the rebuilds of the process's rebuilders, for the
// operations view.
func sumRebuilds(sources ...func() persist.RebuilderStats) func() persist.RebuilderStats {
	return func() persist.RebuilderStats {
		var out persist.RebuilderStats
		for _, f := range sources {
			st := f()
			out.Partitions += st.Partitions
			out.Items += st.Items
			out.Reservations += st.Reservations
			out.Rebuilding += st.Rebuilding
			out.Seconds += st.Seconds
			out.RoundSeconds = max(out.RoundSeconds, st.RoundSeconds)
		}
		return out
	}
}

func rebuildStats(sources ...func() persist.RebuilderStats) func() admin.RebuildStats {
	return func() admin.RebuildStats {
		var out admin.RebuildStats
		for _, f := range sources {
			st := f()
			out.Partitions += st.Partitions
			out.Items += st.Items
			out.Reservations += st.Reservations
			out.Rebuilding += st.Rebuilding
			out.Seconds += st.Seconds
			out.RoundSeconds = max(out.RoundSeconds, st.RoundSeconds)
		}
		return out
	}
}
