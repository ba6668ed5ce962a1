package bench

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Threshold is one service level a rehearsal must hold, parsed from text
// such as "checkout.p99<50ms", "p99<=200ms", "errors<0.1%", "late<1%",
// "rate>=900" or "oversold==0".
//
// Its metric is one of p50, p90, p95, p99, p999, max, mean (latency, with a
// unit of us, ms or s; ms when none), errors (the share of requests that
// failed, neither succeeded nor were refused by the business rules: a
// fraction, or a percentage with %), refused (likewise, for refusals:
// insufficient stock, a purchase limit, a hold no longer held), rate (the
// achieved requests per second), late (the share of iterations not sent on
// time because every in-flight slot was taken), oversold (items found
// breaking 0 <= reserved <= on_hand after the run) and violations (every
// broken invariant). An operation prefix (checkout., reserve., commit.,
// release., read., availability., adjust., bulk.) narrows a latency, errors,
// refused or rate metric to that operation; without one it covers all. A
// stage prefix ("peak:checkout.p99<50ms") narrows a latency, rate or errors
// metric to the requests due during that stage. Tags in braces say the same
// as k6 writes them: "errors{op=checkout,stage=peak}<0.1%" is
// "peak:checkout.errors<0.1%".
type Threshold struct {
	Text   string  `json:"text"`
	Stage  string  `json:"stage,omitempty"`
	Op     string  `json:"op,omitempty"`
	Metric string  `json:"metric"`
	Cmp    string  `json:"cmp"`
	Value  float64 `json:"value"` // in the metric's base unit: ms, a fraction, per second, a count
}

var thresholdRE = regexp.MustCompile(`^\s*(?:([^:<>=]+):)?\s*(?:([a-z]+)\.)?([a-z0-9]+)\s*(<=|>=|==|<|>)\s*([0-9.]+)\s*(us|µs|ms|s|%)?\s*$`)

var latencyMetrics = map[string]float64{"p50": 50, "p90": 90, "p95": 95, "p99": 99, "p999": 99.9, "max": 100, "mean": -1}

var taggedRE = regexp.MustCompile(`^\s*([a-z0-9]+)\{([^}]*)\}(.*)$`)

// untag rewrites "metric{op=O,stage=S}rest" as "S:O.metric rest".
func untag(s string) (string, error) {
	m := taggedRE.FindStringSubmatch(s)
	if m == nil {
		return s, nil
	}
	op, stage := "", ""
	for _, kv := range strings.Split(m[2], ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		v = strings.Trim(strings.TrimSpace(v), `"'`)
		switch {
		case !ok || v == "":
			return "", fmt.Errorf("threshold %q: a tag is name=value", s)
		case k == "op" && op == "":
			op = v
		case k == "stage" && stage == "":
			stage = v
		default:
			return "", fmt.Errorf("threshold %q: tags are op= and stage=, once each", s)
		}
	}
	out := m[1] + m[3]
	if op != "" {
		out = op + "." + out
	}
	if stage != "" {
		out = stage + ":" + out
	}
	return out, nil
}

// ParseThreshold parses one threshold (see Threshold).
func ParseThreshold(s string) (Threshold, error) {
	text := strings.TrimSpace(s)
	s, err := untag(s)
	if err != nil {
		return Threshold{}, err
	}
	m := thresholdRE.FindStringSubmatch(s)
	if m == nil {
		return Threshold{}, fmt.Errorf("threshold %q: want [op.]metric<value[unit], e.g. checkout.p99<50ms", s)
	}
	t := Threshold{Text: text, Stage: strings.TrimSpace(m[1]), Op: m[2], Metric: m[3], Cmp: m[4]}
	v, err := strconv.ParseFloat(m[5], 64)
	if err != nil {
		return Threshold{}, fmt.Errorf("threshold %q: %w", s, err)
	}
	unit := m[6]
	if t.Op != "" && !contains(allOps, t.Op) {
		return Threshold{}, fmt.Errorf("threshold %q: unknown operation %q (one of %s)", s, t.Op, strings.Join(allOps, ", "))
	}
	_, isLatency := latencyMetrics[t.Metric]
	switch {
	case isLatency:
		switch unit {
		case "", "ms":
		case "us", "µs":
			v /= 1000
		case "s":
			v *= 1000
		default:
			return Threshold{}, fmt.Errorf("threshold %q: a latency takes us, ms or s", s)
		}
	case t.Metric == "errors" || t.Metric == "refused" || t.Metric == "late":
		switch unit {
		case "%":
			v /= 100
		case "":
		default:
			return Threshold{}, fmt.Errorf("threshold %q: %s is a fraction or a percentage", s, t.Metric)
		}
		if t.Metric == "late" && t.Op != "" {
			return Threshold{}, fmt.Errorf("threshold %q: late counts iterations, not one operation", s)
		}
	case t.Metric == "rate":
		if unit != "" {
			return Threshold{}, fmt.Errorf("threshold %q: a rate takes no unit (requests per second)", s)
		}
	case t.Metric == "oversold" || t.Metric == "violations":
		if unit != "" || t.Op != "" {
			return Threshold{}, fmt.Errorf("threshold %q: %s is a count over the whole run", s, t.Metric)
		}
	default:
		return Threshold{}, fmt.Errorf("threshold %q: unknown metric %q", s, t.Metric)
	}
	if t.Stage != "" && !isLatency && t.Metric != "rate" && t.Metric != "errors" {
		return Threshold{}, fmt.Errorf("threshold %q: a stage narrows a latency, a rate or errors", s)
	}
	t.Value = v
	return t, nil
}

// ThresholdResult is a threshold and what the run measured for it.
type ThresholdResult struct {
	Threshold
	Measured float64 `json:"measured"`
	Held     bool    `json:"held"`
	// Detail says what was measured, with its unit.
	Detail string `json:"detail"`
}

// evaluate measures t on the rehearsal.
func (t Threshold) evaluate(r *Rehearsal) ThresholdResult {
	res := ThresholdResult{Threshold: t}
	var unit string
	switch t.Metric {
	case "oversold":
		res.Measured, unit = float64(r.Oversold), " items"
	case "violations":
		res.Measured, unit = float64(len(r.Violations)), " violations"
	case "late":
		if r.Iterations > 0 {
			res.Measured = float64(r.Late) / float64(r.Iterations)
		}
	default:
		s := r.Total
		if t.Stage != "" {
			s = nil
			for _, st := range r.Stages {
				if st.Name == t.Stage {
					s = st.Total
					if t.Op != "" {
						s = st.Ops[t.Op]
					}
				}
			}
			if s == nil {
				s = &OpSummary{}
			}
		} else if t.Op != "" {
			s = r.Ops[t.Op]
			if s == nil {
				s = &OpSummary{}
			}
		}
		switch t.Metric {
		case "errors":
			res.Measured = s.ErrorRate
		case "refused":
			if s.Count > 0 {
				res.Measured = float64(s.Refused) / float64(s.Count)
			}
		case "rate":
			res.Measured, unit = s.Rate, "/s"
		case "mean":
			res.Measured, unit = s.Latency.Mean, " ms"
		case "max":
			res.Measured, unit = s.Latency.Max, " ms"
		default:
			res.Measured, unit = s.Latency.percentile(latencyMetrics[t.Metric]), " ms"
		}
	}
	switch t.Metric {
	case "errors", "refused", "late":
		res.Detail = fmt.Sprintf("%.4g%%", 100*res.Measured)
	default:
		res.Detail = fmt.Sprintf("%.4g%s", res.Measured, unit)
	}
	switch t.Cmp {
	case "<":
		res.Held = res.Measured < t.Value
	case "<=":
		res.Held = res.Measured <= t.Value
	case ">":
		res.Held = res.Measured > t.Value
	case ">=":
		res.Held = res.Measured >= t.Value
	case "==":
		res.Held = res.Measured == t.Value
	}
	return res
}
