package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// assignment is one load process's share of a rehearsal: the iterations n
// of the plan's schedule with n % Of == Index (open loop), or its share of
// the closed-loop workers, against the server at URL, from StartAt on.
type assignment struct {
	Plan    Plan      `json:"plan"`
	URL     string    `json:"url"`
	Token   string    `json:"token"`
	Run     string    `json:"run"`
	Index   int       `json:"index"`
	Of      int       `json:"of"`
	StartAt time.Time `json:"start_at"`
}

// maxStartWait bounds how far in the future a part may be told to start.
const maxStartWait = time.Minute

// runPart runs one process's share of the load and returns its tally; emit
// receives each second's progress as it ends (never concurrently). Every
// loop ends with the plan's duration (plus the requests' timeout for those
// in flight) or with ctx.
func runPart(ctx context.Context, a assignment, emit func(progress)) (*tally, error) {
	p := a.Plan
	if a.Of < 1 || a.Index < 0 || a.Index >= a.Of {
		return nil, fmt.Errorf("part %d of %d", a.Index, a.Of)
	}
	wait := time.Until(a.StartAt)
	if wait > maxStartWait {
		return nil, fmt.Errorf("start at %s is %s away (over %s): are the clocks in step?", a.StartAt.Format(time.RFC3339Nano), wait, maxStartWait)
	}
	inflight := p.Client.MaxInFlight
	if p.Client.ClosedLoop > 0 {
		inflight = p.Client.ClosedLoop/a.Of + 1
	}
	c := newHTTPClient(a.URL, a.Token, inflight, p.Client.Timeout)
	defer c.closeIdle()
	r := newRunner(p, a.Run, c)
	// Open the connections the load will start with before it starts.
	c.Warm(ctx, min(inflight, 64))
	if wait := time.Until(a.StartAt); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	start := a.StartAt
	if time.Since(start) > time.Second {
		start = time.Now() // told to start in the past: start now
	}
	r.start = start
	// When this process really began: the start time, or later when the
	// timer fired late.
	r.t.FirstStart, r.t.LastStart = time.Now(), time.Now()
	dur := p.Duration()
	lctx, cancel := context.WithTimeout(ctx, dur+p.Client.Timeout+5*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if p.Client.ClosedLoop > 0 {
			r.closedLoop(lctx, a, dur)
		} else {
			r.openLoop(lctx, a)
		}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	sec := 0
	for {
		select {
		case <-done:
			for ; sec <= int(time.Since(start)/time.Second); sec++ {
				emit(r.t.interval(sec))
			}
			return r.t, ctx.Err()
		case <-tick.C:
			for ; sec < int(time.Since(start)/time.Second); sec++ {
				emit(r.t.interval(sec))
			}
		}
	}
}

// openLoop sends this part's iterations on the schedule. A dispatcher hands
// each due iteration to an idle sender, starts a new sender when none is
// idle, and when MaxInFlight senders are busy waits for one: that
// iteration is late, and its latency still counts from when it was due.
func (r *runner) openLoop(ctx context.Context, a assignment) {
	sched := newSchedule(a.Plan)
	type ticket struct {
		n     int64
		due   time.Time
		stage int
	}
	idle := make(chan ticket)
	var wg sync.WaitGroup
	var busy atomic.Int64
	senders := 0
	sender := func(t ticket) {
		defer wg.Done()
		for {
			r.t.inFlight(int(busy.Add(1)))
			r.iteration(ctx, t.n, t.due, t.stage)
			busy.Add(-1)
			var ok bool
			select {
			case t, ok = <-idle:
				if !ok {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}
	defer func() {
		close(idle)
		wg.Wait()
	}()
	for n := int64(a.Index); ctx.Err() == nil; n += int64(a.Of) {
		off, ok := sched.at(n)
		if !ok {
			return
		}
		due := r.start.Add(off)
		if wait := time.Until(due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		tk := ticket{n: n, due: due, stage: sched.stageAt(off)}
		select {
		case idle <- tk:
			r.t.due(off, time.Since(due), false)
			continue
		default:
		}
		if senders < a.Plan.Client.MaxInFlight {
			senders++
			wg.Add(1)
			r.t.due(off, time.Since(due), false)
			go sender(tk)
			continue
		}
		select {
		case idle <- tk:
			r.t.due(off, time.Since(due), true)
		case <-ctx.Done():
			return
		}
	}
}

// closedLoop runs this part's share of the closed-loop workers: each
// sends its next iteration when the last one answered, until dur has
// passed; latency counts from each send.
func (r *runner) closedLoop(ctx context.Context, a assignment, dur time.Duration) {
	workers := a.Plan.Client.ClosedLoop / a.Of
	if a.Index < a.Plan.Client.ClosedLoop%a.Of {
		workers++
	}
	sched := newSchedule(a.Plan)
	end := r.start.Add(dur)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				now := time.Now()
				if !now.Before(end) {
					return
				}
				n := next.Add(1) - 1
				off := now.Sub(r.start)
				r.t.due(off, 0, false)
				r.iteration(ctx, n*int64(a.Of)+int64(a.Index), now, sched.stageAt(off))
			}
		}()
	}
	wg.Wait()
}
