package bench_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/bench"
	"github.com/shelfline/inventory/internal/testsupport"
)

// rehearse runs plan against the stub and logs the summary.
func rehearse(t *testing.T, stub *testsupport.Stub, plan bench.Plan, workers ...string) *bench.Rehearsal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var progress bytes.Buffer
	r, err := bench.Rehearse(ctx, bench.RehearsalConfig{Plan: plan, URL: stub.URL, Token: "t", Workers: workers,
		OutDir: t.TempDir(), Progress: &progress, StartDelay: 300 * time.Millisecond})
	require.NoError(t, err)
	var sum bytes.Buffer
	require.NoError(t, bench.WriteRehearsalSummary(&sum, r))
	t.Log("\n" + progress.String() + "\n" + sum.String())
	return r
}

func plan(t *testing.T, text string) bench.Plan {
	t.Helper()
	p, err := bench.ParsePlan([]byte(text))
	require.NoError(t, err)
	return p
}

// TestRehearsalCountsAStallFromWhenRequestsWereDue: the stub stops for
// 500 ms after its 200th checkout of a 200/s schedule. An open-loop client
// keeps sending on time, so the ~100 checkouts due during the stall each
// wait out the rest of it: over a sixth of the requests, so the p99 holds
// most of the stall (a closed loop would have sent a handful and seen one
// slow second). The bounds are generous one way only: a loaded machine
// only adds latency, it never removes the stall's.
func TestRehearsalCountsAStallFromWhenRequestsWereDue(t *testing.T) {
	stub := testsupport.NewStub(t)
	stub.Delay, stub.StallAfter, stub.Stall = 5*time.Millisecond, 200, 500*time.Millisecond
	r := rehearse(t, stub, plan(t, `
name: stall
start_rate: 200
stages: [{name: hold, duration: 3s, rate: 200}]
catalog: {stores: 2, skus: 5, on_hand: 100000}
thresholds: ["checkout.p99<50ms", "errors<0.1%", "oversold==0", "late==0", "hold:p50<5s"]
`))
	require.Equal(t, int64(600), r.Iterations, "3 s at 200/s is 600 iterations, whatever the server does")
	require.Equal(t, int64(600), stub.Checkouts.Load())
	co := r.Ops[bench.OpCheckout]
	require.Equal(t, int64(600), co.Count)
	require.Equal(t, int64(600), co.OK)
	require.Zero(t, r.Late, "the stall holds ~100 in flight, far below the 2000 slots")
	require.GreaterOrEqual(t, co.Latency.P50, 5.0, "nothing answers faster than the injected delay")
	require.Less(t, co.Latency.P50, 5.0+200, "most requests meet no stall")
	require.GreaterOrEqual(t, co.Latency.P99, 300.0, "the requests due during the stall wait out the rest of it")
	require.Less(t, co.Latency.P99, 500+5+1500.0)
	for _, s := range r.Timeline[:3] {
		require.Equal(t, int64(200), s.Offered, "second %d", s.T)
	}
	require.Empty(t, r.Violations)
	held := map[string]bool{}
	for _, th := range r.Thresholds {
		held[th.Text] = th.Held
	}
	require.Equal(t, map[string]bool{"checkout.p99<50ms": false, "errors<0.1%": true, "oversold==0": true, "late==0": true, "hold:p50<5s": true}, held)
	require.False(t, r.Passed, "a failing threshold fails the run")
	require.NotEmpty(t, r.Metrics, "the stub's /metrics was sampled")
	require.Equal(t, 12.0, r.Metrics[0].StreamLength)
	html, err := os.ReadFile(r.Files["html"])
	require.NoError(t, err)
	require.Contains(t, string(html), "<svg")
	require.NotContains(t, string(html), "<script src", "self-contained")
}

// TestRehearsalMeasuresAServerThatCannotKeepUp: the stub serves 100
// checkouts/s, one at a time; the schedule offers 200/s for 2 s. The
// achieved rate is the stub's, and latency grows by half a second per
// second of the run: request i is due at i/200 s but answered at the
// earliest at i/100 s, so the median waits at least ~1 s. With only five
// in-flight slots most iterations are sent late, and their latency still
// counts from when they were due.
func TestRehearsalMeasuresAServerThatCannotKeepUp(t *testing.T) {
	for _, inflight := range []int{0, 5} {
		t.Run(map[int]string{0: "ample slots", 5: "five slots"}[inflight], func(t *testing.T) {
			stub := testsupport.NewStub(t)
			stub.Capacity = 100
			p := plan(t, `
start_rate: 200
stages: [{duration: 2s, rate: 200}]
catalog: {stores: 1, skus: 5, on_hand: 100000}
`)
			if inflight > 0 {
				p.Client.MaxInFlight = inflight
			}
			r := rehearse(t, stub, p)
			co := r.Ops[bench.OpCheckout]
			require.Equal(t, int64(400), r.Iterations)
			require.Equal(t, int64(400), co.OK)
			require.LessOrEqual(t, co.Rate, 100*1.1, "the stub answers at most 100/s")
			require.GreaterOrEqual(t, co.Latency.P50, 800.0, "the median request waits for the 200 before it")
			require.GreaterOrEqual(t, co.Latency.P99, 1600.0, "the last ones wait ~2 s")
			require.Less(t, co.Latency.P99, 2000+3000.0)
			if inflight > 0 {
				require.Greater(t, r.Late, int64(300), "five slots cannot carry a queue of hundreds")
				require.LessOrEqual(t, r.MaxInFlight, 5)
			} else {
				require.Zero(t, r.Late)
				require.Greater(t, r.MaxInFlight, 50, "the queue shows as requests in flight")
			}
		})
	}
}

// TestRehearsalWithWorkers: three workers, started at the same moment by
// the coordinator, share a ramp; the merged report holds every iteration
// of the schedule exactly once.
func TestRehearsalWithWorkers(t *testing.T) {
	stub := testsupport.NewStub(t)
	stub.Delay = 2 * time.Millisecond
	var urls []string
	for i := 0; i < 3; i++ {
		srv := httptest.NewServer(&bench.Worker{})
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	r := rehearse(t, stub, plan(t, `
stages: [{name: ramp, duration: 1s, rate: 300}, {name: hold, duration: 1s, rate: 300}]
catalog: {stores: 3, skus: 10, on_hand: 100000}
thresholds: ["errors==0"]
`), urls...)
	// 0→300 over 1 s is 150 iterations, then 300.
	require.Equal(t, int64(450), r.Iterations)
	require.Equal(t, int64(450), stub.Checkouts.Load())
	require.Equal(t, 3, r.Processes)
	require.Less(t, r.StartSpread, 1000.0, "one start time for all: they begin together (bounded by timer lateness on a loaded machine)")
	require.Equal(t, int64(450), r.Ops[bench.OpCheckout].Latency.Count, "the merged histogram holds every request")
	require.Equal(t, int64(150), r.Stages[0].Total.Count)
	require.Equal(t, int64(300), r.Stages[1].Total.Count)
	require.True(t, r.Passed, "%v", r.Violations)
}

func TestParsePlanRejects(t *testing.T) {
	for _, bad := range []string{
		``,
		`stages: []`,
		`stages: [{duration: 1s, rate: 10}]
mix: {checkout: -1}`,
		`stages: [{duration: 1s, rate: 10}]
unknown: 1`,
		`stages: [{duration: 1s, rate: 10}]
thresholds: ["p99<fast"]`,
		`stages: [{duration: 1s, rate: 10}]
hot: {share: 0.5, zipf: 1.2}`,
		`stages: [{duration: 1s, rate: 10}]
thresholds: ["peak:p99<1s"]`,
	} {
		_, err := bench.ParsePlan([]byte(bad))
		require.Error(t, err, bad)
	}
	p := plan(t, `{"stages": [{"duration": "1m", "rate": 10}], "mix": {"checkout": 3, "read": 1}}`)
	require.Equal(t, time.Minute, p.Duration(), "JSON plans read like YAML")
	st, err := bench.ParseStages("10s:100, 1m:500")
	require.NoError(t, err)
	require.Equal(t, []bench.Stage{{Duration: 10 * time.Second, Rate: 100}, {Duration: time.Minute, Rate: 500}}, st)
}

func TestParseThreshold(t *testing.T) {
	for in, want := range map[string]bench.Threshold{
		"checkout.p99<50ms":                   {Op: "checkout", Metric: "p99", Cmp: "<", Value: 50},
		"p999 <= 1s":                          {Metric: "p999", Cmp: "<=", Value: 1000},
		"errors<0.1%":                         {Metric: "errors", Cmp: "<", Value: 0.001},
		"oversold==0":                         {Metric: "oversold", Cmp: "==", Value: 0},
		"read.rate>=900":                      {Op: "read", Metric: "rate", Cmp: ">=", Value: 900},
		"cool-down: checkout.p99<80ms":        {Stage: "cool-down", Op: "checkout", Metric: "p99", Cmp: "<", Value: 80},
		"peak:errors<1%":                      {Stage: "peak", Metric: "errors", Cmp: "<", Value: 0.01},
		"peak:checkout.errors<1%":             {Stage: "peak", Op: "checkout", Metric: "errors", Cmp: "<", Value: 0.01},
		"errors{op=checkout,stage=peak}<0.1%": {Stage: "peak", Op: "checkout", Metric: "errors", Cmp: "<", Value: 0.001},
		"p99{stage=spike} < 80ms":             {Stage: "spike", Metric: "p99", Cmp: "<", Value: 80},
		"transfer.rate>=1":                    {Op: "transfer", Metric: "rate", Cmp: ">=", Value: 1},
	} {
		got, err := bench.ParseThreshold(in)
		require.NoError(t, err, in)
		want.Text = strings.TrimSpace(in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"p99<50kg", "nope.p99<1ms", "oversold<1%", "latency<3", "checkout.late<1%", "peak:oversold==0",
		"errors{op=checkout,op=read}<1%", "errors{region=eu}<1%", "errors{op}<1%", "peak:checkout.refused<1%"} {
		_, err := bench.ParseThreshold(bad)
		require.Error(t, err, bad)
	}
}

// TestRehearsalRetriesUnknownOutcomesWithTheirKey: the stub applies every
// fifth checkout and loses its reply (504). With idempotency the client
// sends it again under the same key, the stub replays it, and every
// checkout ends known: stock equals the books exactly. Without, the lost
// replies are errors of unknown outcome, which the books allow for.
func TestRehearsalRetriesUnknownOutcomesWithTheirKey(t *testing.T) {
	for _, idem := range []bool{true, false} {
		stub := testsupport.NewStub(t)
		stub.LoseEvery = 5
		p := plan(t, `
start_rate: 100
stages: [{duration: 1s, rate: 100}]
catalog: {stores: 1, skus: 4, on_hand: 1000}
thresholds: ["oversold==0", "violations==0"]
`)
		p.Client.Idempotency = idem
		r := rehearse(t, stub, p)
		co := r.Ops[bench.OpCheckout]
		require.Equal(t, int64(100), co.Count)
		require.True(t, r.Passed, "the books hold either way: %v", r.Violations)
		if idem {
			require.Equal(t, int64(100), co.OK, "every lost reply was retried to a known outcome")
			require.Positive(t, co.Retries)
			require.Zero(t, co.Unknown)
		} else {
			require.Zero(t, co.Retries)
			require.Positive(t, co.Unknown, "a keyless client cannot retry a lost reply")
			require.Equal(t, co.Unknown, co.Errors)
		}
	}
}

// TestExamplePlanParses keeps the plan the README shows valid.
func TestExamplePlanParses(t *testing.T) {
	p, err := bench.LoadPlan("plans/black-friday.yaml")
	require.NoError(t, err)
	require.Len(t, p.Stages, 5)
	require.Equal(t, 15*time.Second, p.Duration())
	require.True(t, p.Client.Idempotency)
	require.Len(t, p.Thresholds, 6)
	require.Positive(t, p.Mix.Transfer, "transfers are in the mix")
}

// TestWorkerToken: a worker started with a token refuses an assignment
// without it (401, no load sent) and runs one that carries it.
func TestWorkerToken(t *testing.T) {
	stub := testsupport.NewStub(t)
	srv := httptest.NewServer(&bench.Worker{Token: "s3cret"})
	t.Cleanup(srv.Close)
	p := plan(t, `
stages: [{duration: 1s, rate: 20}]
catalog: {stores: 1, skus: 2, on_hand: 1000}
`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := bench.Rehearse(ctx, bench.RehearsalConfig{Plan: p, URL: stub.URL, Token: "t", Workers: []string{srv.URL},
		OutDir: t.TempDir(), StartDelay: 300 * time.Millisecond, WorkerToken: "wrong"})
	require.ErrorContains(t, err, "401")
	require.Zero(t, stub.Checkouts.Load(), "no load without the token")
	r, err := bench.Rehearse(ctx, bench.RehearsalConfig{Plan: p, URL: stub.URL, Token: "t", Workers: []string{srv.URL},
		OutDir: t.TempDir(), StartDelay: 300 * time.Millisecond, WorkerToken: "s3cret"})
	require.NoError(t, err)
	require.Equal(t, int64(10), r.Iterations)
}
