package bench

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"reflect"
	"text/tabwriter"
)

// Difference is one measure of two rehearsals side by side.
type Difference struct {
	Op     string  `json:"op"`
	Metric string  `json:"metric"`
	A      float64 `json:"a"`
	B      float64 `json:"b"`
	// Change is (B−A)/A; Noise the change the runs' own second-to-second
	// spread can explain (0 when not estimated).
	Change     float64 `json:"change"`
	Noise      float64 `json:"noise"`
	Regression bool    `json:"regression"`
}

// Comparison is B against A.
type Comparison struct {
	Tolerance   float64      `json:"tolerance"`
	Differences []Difference `json:"differences"`
	Regressions int          `json:"regressions"`
}

// latencyFloor is the smallest latency change (ms) ever called a
// regression: below it, a loopback run's scheduling noise dominates.
const latencyFloor = 0.5

// Compare compares rehearsal b with a, per operation (and all together):
// latency percentiles p50, p90, p99 and p99.9, the achieved rate, the error
// rate, and the share of iterations sent late. A latency is a regression
// when it grew by more than tolerance (a fraction, say 0.1) and by more
// than the noise: 0.5 ms, and twice the standard error of the difference
// of the two runs' per-second values of that percentile (their spread
// over the run's seconds says how much a whole-run figure moves by
// chance). A rate is a regression when it fell by more than tolerance, the
// error rate when it rose by more than tolerance and by at least 0.1
// percentage points. The maxima are shown, never judged: one request makes
// them.
func Compare(a, b *Rehearsal, tolerance float64) Comparison {
	c := Comparison{Tolerance: tolerance}
	add := func(d Difference) {
		if d.A != 0 {
			d.Change = (d.B - d.A) / math.Abs(d.A)
		} else if d.B != 0 {
			d.Change = math.Inf(1)
		}
		if d.Regression {
			c.Regressions++
		}
		c.Differences = append(c.Differences, d)
	}
	ops := append([]string{"all"}, allOps...)
	for _, op := range ops {
		sa, sb := a.Total, b.Total
		if op != "all" {
			sa, sb = a.Ops[op], b.Ops[op]
		}
		if sa == nil || sb == nil || sa.Count == 0 || sb.Count == 0 {
			continue
		}
		for _, q := range []struct {
			name string
			q    float64
		}{{"p50", 50}, {"p90", 90}, {"p99", 99}, {"p99.9", 99.9}} {
			va, vb := sa.Latency.percentile(q.q), sb.Latency.percentile(q.q)
			noise := 2 * math.Sqrt(sqErr(a, op, q.q)+sqErr(b, op, q.q))
			d := Difference{Op: op, Metric: q.name + " ms", A: va, B: vb, Noise: noise}
			d.Regression = vb > va*(1+tolerance) && vb-va > math.Max(latencyFloor, noise)
			add(d)
		}
		add(Difference{Op: op, Metric: "max ms", A: sa.Latency.Max, B: sb.Latency.Max})
		add(Difference{Op: op, Metric: "rate/s", A: sa.Rate, B: sb.Rate, Regression: sb.Rate < sa.Rate*(1-tolerance)})
		add(Difference{Op: op, Metric: "error rate", A: sa.ErrorRate, B: sb.ErrorRate,
			Regression: sb.ErrorRate > sa.ErrorRate*(1+tolerance) && sb.ErrorRate-sa.ErrorRate >= 0.001})
	}
	la, lb := shareOf(a.Late, a.Iterations), shareOf(b.Late, b.Iterations)
	add(Difference{Op: "all", Metric: "late share", A: la, B: lb, Regression: lb > la*(1+tolerance) && lb-la >= 0.001})
	return c
}

func shareOf(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// sqErr is the squared standard error of the mean of a run's per-second
// values of percentile q of op: their variance over the seconds with
// requests, divided by how many there are.
func sqErr(r *Rehearsal, op string, q float64) float64 {
	var xs []float64
	for _, s := range r.Timeline {
		l := s.Latency
		if op != "all" {
			l = s.Ops[op]
		}
		if l.Count > 0 {
			xs = append(xs, l.percentile(q))
		}
	}
	if len(xs) < 2 {
		return 0
	}
	var mean, v float64
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		v += (x - mean) * (x - mean)
	}
	v /= float64(len(xs) - 1)
	return v / float64(len(xs))
}

// WriteComparison prints a comparison as a table, regressions marked.
func WriteComparison(w io.Writer, a, b *Rehearsal, c Comparison) error {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "A: %s run %s (%s)\nB: %s run %s (%s)\n", a.Name, a.Run, a.Started.Format("2006-01-02 15:04Z"), b.Name, b.Run, b.Started.Format("2006-01-02 15:04Z"))
	if !reflect.DeepEqual(a.Plan.Stages, b.Plan.Stages) || a.Plan.Mix != b.Plan.Mix || a.Plan.Catalog != b.Plan.Catalog {
		fmt.Fprintf(&buf, "note: the runs' stages, mix or catalog differ; their figures compare different loads\n")
	}
	fmt.Fprintln(&buf)
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tmetric\tA\tB\tchange\tnoise\t\t")
	for _, d := range c.Differences {
		mark := ""
		if d.Regression {
			mark = "REGRESSION"
		}
		noise := ""
		if d.Noise > 0 {
			noise = fmt.Sprintf("±%.3g", d.Noise)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.4g\t%.4g\t%+.1f%%\t%s\t%s\t\n", d.Op, d.Metric, d.A, d.B, 100*d.Change, noise, mark)
	}
	tw.Flush()
	if c.Regressions > 0 {
		fmt.Fprintf(&buf, "\n%d regression(s) beyond %.0f%% and the noise\n", c.Regressions, 100*c.Tolerance)
	} else {
		fmt.Fprintf(&buf, "\nno regression beyond %.0f%% and the noise\n", 100*c.Tolerance)
	}
	_, err := w.Write(buf.Bytes())
	return err
}
