package bench

import (
	"fmt"
	"strings"
)

// Goal is one of the product's performance goals (docs/design.md §16), as measured by
// a run that had the targets it compares.
type Goal struct {
	Goal     string  `json:"goal"`
	Measured float64 `json:"measured"`
	Want     float64 `json:"want"`
	// AtMost is true when the measure must stay at or below Want (a
	// latency), false when it must reach it (a ratio).
	AtMost bool `json:"at_most"`
	Met    bool `json:"met"`
	// Unit is how Measured reads: "ms", or "×" for a ratio.
	Unit string `json:"unit"`
}

// Goals evaluates the performance goals a run's results allow: the HTTP
// flash sale against PostgreSQL-only baseline (b), the full server against
// the bare reference, the in-process engine against redis-benchmark's
// trivial EVALSHA, and the server's p99 at peak and at half of it. They are
// reported, never enforced: speed is measured, not asserted.
func Goals(r *Report) []Goal {
	by := map[string]*TargetResult{}
	for _, res := range r.Results {
		if res.Error == "" {
			by[res.Target] = res
		}
	}
	var out []Goal
	ratio := func(goal, a, b string, want float64) {
		x, y := by[a], by[b]
		if x == nil || y == nil || y.Throughput <= 0 {
			return
		}
		v := x.Throughput / y.Throughput
		out = append(out, Goal{Goal: goal, Measured: v, Want: want, Met: v >= want, Unit: "×"})
	}
	http := TargetServer
	if by[http] == nil {
		http = TargetHTTP
	}
	ratio("HTTP flash sale ≥ 30× baseline (b) pg-guarded", http, TargetPGGuarded, 30)
	ratio("full server ≥ 75% of the bare reference", http, TargetBare, 0.75)
	ratio("engine in-process ≥ 2× redis-benchmark trivial EVALSHA", TargetEngine, TargetRedisBenchmark, 2)
	if x := by[http]; x != nil && r.Scenario == ScenarioFlashSale {
		out = append(out, Goal{Goal: "HTTP p99 ≤ 10 ms at peak (" + http + ")", Measured: x.Latency.P99, Want: 10, AtMost: true, Met: x.Latency.P99 <= 10, Unit: "ms"})
	}
	// CPU per sale against the bare reference's: only with an outside load
	// client (wrk), where the bench process's CPU is the server's alone.
	cpuRatio := func(goal, proc string, want float64) {
		x, y := by[http], by[TargetBare]
		if x == nil || y == nil || r.Params["client"] != ClientWrk {
			return
		}
		a, b := x.CPUPerOp[proc], y.CPUPerOp[proc]
		if a <= 0 || b <= 0 {
			return
		}
		out = append(out, Goal{Goal: goal, Measured: a / b, Want: want, AtMost: true, Met: a/b <= want, Unit: "×"})
	}
	cpuRatio("Redis CPU per sale ≤ the bare reference's ("+http+")", "redis", 1)
	cpuRatio("server CPU per sale ≤ 1.6× the bare reference's ("+http+")", "bench_process", 1.6)
	for _, res := range r.Results {
		if strings.HasPrefix(res.Target, http+"@50%") && res.Error == "" {
			out = append(out, Goal{Goal: "HTTP p99 ≤ 2 ms at half of peak (" + res.Target + ")", Measured: res.Latency.P99, Want: 2, AtMost: true, Met: res.Latency.P99 <= 2, Unit: "ms"})
		}
	}
	return out
}

func (g Goal) String() string {
	verdict := "not met"
	if g.Met {
		verdict = "met"
	}
	if g.AtMost && g.Unit == "×" {
		return fmt.Sprintf("%-60s %8.2f ×   (want ≤ %g)  %s", g.Goal, g.Measured, g.Want, verdict)
	}
	if g.AtMost {
		return fmt.Sprintf("%-60s %8.3f ms  (want ≤ %g)  %s", g.Goal, g.Measured, g.Want, verdict)
	}
	return fmt.Sprintf("%-60s %8.2f ×   (want ≥ %g)  %s", g.Goal, g.Measured, g.Want, verdict)
}
