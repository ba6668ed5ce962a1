package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"
)

// load drives one target: Workers goroutines call op until it returns false,
// the duration passes, MaxOps operations have started, or ctx ends. Every
// loop stops by itself. An operation in flight when the duration ends may
// finish (its outcome is then known) within opGrace. It prints progress once
// a second.
type load struct {
	name     string
	workers  int
	duration time.Duration
	maxOps   int64
	// rate, when positive, paces the load at rate operations per second
	// across all workers (an open-loop schedule); latency then counts from
	// when each operation was due, so a server that falls behind shows it
	// (no coordinated omission).
	rate     float64
	progress io.Writer
	now      func() time.Time
	// persisted, when set, counts the events the target's persister has
	// written, sampled as the load starts and ends.
	persisted func() (int64, bool)
	// profile, when set, is the file the load's CPU profile goes to.
	profile string
}

// opGrace bounds how long operations in flight at the end of the duration
// may take to finish.
const opGrace = 15 * time.Second

// op runs one operation of worker w and records it; it returns false when
// the worker is done (a buyer who saw the sale sold out).
type op func(ctx context.Context, w int, rec *recorder) bool

// run returns the recorder and the wall time the load took.
func (l load) run(ctx context.Context, fn op) (*recorder, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, l.duration+opGrace)
	defer cancel()
	if l.profile != "" {
		stop, err := startProfile(l.profile)
		if err != nil {
			fmt.Fprintf(l.progress, "[%s] no CPU profile: %v\n", l.name, err)
		} else {
			defer stop()
		}
	}
	cpu0 := sampleCPU()
	var p0 int64
	if l.persisted != nil {
		p0, _ = l.persisted()
	}
	start := l.now()
	deadline := start.Add(l.duration)
	rec := newRecorder(start, bucketWidth(l.duration))
	rec.slots = make([]time.Time, l.workers)
	var interval time.Duration
	if l.rate > 0 {
		interval = time.Duration(float64(time.Second) / l.rate)
	}
	var started atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < l.workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for ctx.Err() == nil && l.now().Before(deadline) {
				n := started.Add(1)
				if n > l.maxOps {
					return
				}
				if interval > 0 {
					due := start.Add(time.Duration(n-1) * interval)
					if !due.Before(deadline) {
						return
					}
					if wait := due.Sub(l.now()); wait > 0 {
						t := time.NewTimer(wait)
						select {
						case <-ctx.Done():
							t.Stop()
							return
						case <-t.C:
						}
					}
					rec.slots[w] = due
				}
				if !fn(ctx, w, rec) {
					return
				}
			}
		}(w)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last int64
	for {
		select {
		case <-done:
			elapsed := l.now().Sub(start)
			rec.cpu = cpuUse(cpu0, sampleCPU())
			if l.persisted != nil {
				if p1, ok := l.persisted(); ok {
					rec.persisted = p1 - p0
				}
			}
			l.report(rec, elapsed, &last, true)
			return rec, elapsed
		case <-tick.C:
			l.report(rec, l.now().Sub(start), &last, false)
		}
	}
}

func (l load) report(rec *recorder, elapsed time.Duration, last *int64, final bool) {
	ok, ref, errs := rec.ok.Load(), rec.refused.Load(), rec.errors.Load()
	total := ok + ref + errs
	rate := total - *last
	*last = total
	label := "rate"
	if final {
		rate = int64(float64(total) / elapsed.Seconds())
		label = "mean"
	}
	fmt.Fprintf(l.progress, "[%s] %5.1fs  ops %9d  %s %8d/s  ok %9d  refused %7d  errors %6d\n",
		l.name, elapsed.Seconds(), total, label, rate, ok, ref, errs)
}

// timed runs f and records it for worker w, from when it was due under a
// paced load, else from now.
func timed(rec *recorder, w int, now func() time.Time, f func() error) error {
	began := now()
	if due := rec.takeSlot(w); !due.IsZero() && due.Before(began) {
		began = due
	}
	err := f()
	rec.record(w, began, now().Sub(began), err)
	return err
}

// startProfile starts the process's CPU profile into path and returns the
// function that stops it.
func startProfile(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
