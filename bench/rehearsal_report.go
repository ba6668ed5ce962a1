package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteRehearsalSummary writes a rehearsal as text: per stage and per
// operation the requests, rate and latency percentiles, what was late,
// errors by kind, the server's metrics, the checks and the thresholds.
func WriteRehearsalSummary(w io.Writer, r *Rehearsal) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s run %s  %s  against %s  %d load process(es)  %d CPUs (%s), load %.2f at start\n", r.Name, r.Run,
		r.Started.Format("2006-01-02 15:04:05Z"), r.URL, r.Processes, r.Machine.CPUs, r.Machine.CPUModel, r.Machine.Load1)
	if r.Command != "" {
		fmt.Fprintf(&b, "command: %s\n", r.Command)
	}
	mode := "open loop: latency from when each iteration was due"
	if r.Plan.Client.ClosedLoop > 0 {
		mode = fmt.Sprintf("closed loop: %d workers, latency from each send", r.Plan.Client.ClosedLoop)
	}
	fmt.Fprintf(&b, "%s; %d iterations in %.1fs; %d (%.2f%%) sent late for want of an in-flight slot; send delay p99 %.3f ms; at most %d in flight\n",
		mode, r.Iterations, r.Seconds, r.Late, pct(r.Late, r.Iterations), r.SendDelay.P99, r.MaxInFlight)
	if r.Processes > 1 {
		fmt.Fprintf(&b, "the %d load processes began within %.1f ms of each other\n", r.Processes, r.StartSpread)
	}
	fmt.Fprintln(&b)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stage\top\trequests\trate/s\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\t")
	for _, s := range r.Stages {
		for _, name := range append(allOps, "all") {
			o := s.Ops[name]
			if name == "all" {
				o = s.Total
			}
			if o == nil || o.Count == 0 {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n", s.Name, name, o.Count, o.Rate,
				o.Latency.P50, o.Latency.P90, o.Latency.P99, o.Latency.P999, o.Latency.Max)
		}
	}
	tw.Flush()
	fmt.Fprintln(&b)
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "whole run\trequests\trate/s\tok\trefused\terrors\tunknown\tretries\tp50 ms\tp99 ms\tmax ms\t")
	for _, name := range append(allOps, "all") {
		o := r.Ops[name]
		if name == "all" {
			o = r.Total
		}
		if o == nil || o.Count == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%d\t%d\t%d\t%d\t%d\t%.3f\t%.3f\t%.3f\t\n", name, o.Count, o.Rate, o.OK, o.Refused, o.Errors, o.Unknown, o.Retries,
			o.Latency.P50, o.Latency.P99, o.Latency.Max)
	}
	tw.Flush()
	if len(r.Total.Kinds) > 0 {
		fmt.Fprintf(&b, "\noutcomes other than success: %s\n", kindString(r.Total.Kinds))
	}
	if n := len(r.Metrics); n > 0 {
		var lag, stream float64
		for _, m := range r.Metrics {
			lag, stream = max(lag, m.PersisterLag), max(stream, m.StreamLength)
		}
		shed := r.Metrics[n-1].Shed - r.Metrics[0].Shed
		fmt.Fprintf(&b, "\nserver metrics (%d samples): persister lag at most %s events, stream length at most %s, %s requests shed\n",
			n, metricString(lag), metricString(stream), metricString(shed))
	} else if r.MetricsError != "" {
		fmt.Fprintf(&b, "\nserver metrics not sampled: %s\n", r.MetricsError)
	}
	fmt.Fprintln(&b)
	for _, c := range r.Checks {
		mark := "ok    "
		if !c.Passed {
			mark = "BROKEN"
		}
		fmt.Fprintf(&b, "  %s %-26s %s\n", mark, c.Name, c.Detail)
	}
	if len(r.Thresholds) > 0 {
		fmt.Fprintf(&b, "\nthresholds:\n")
		for _, t := range r.Thresholds {
			mark := "held  "
			if !t.Held {
				mark = "FAILED"
			}
			fmt.Fprintf(&b, "  %s %-28s measured %s\n", mark, t.Text, t.Detail)
		}
	}
	switch {
	case len(r.Violations) > 0:
		fmt.Fprintf(&b, "\n!!! INVARIANTS BROKEN !!!\n")
		for _, v := range r.Violations {
			fmt.Fprintf(&b, "!!! %s\n", v)
		}
	case !r.Passed:
		fmt.Fprintf(&b, "\nFAILED: a threshold did not hold\n")
	default:
		fmt.Fprintf(&b, "\npassed: every invariant and every threshold held\n")
	}
	for _, k := range []string{"json", "html", "txt"} {
		if p := r.Files[k]; p != "" {
			fmt.Fprintf(&b, "%s: %s\n", k, p)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

func pct(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

func metricString(v float64) string {
	if v < 0 {
		return "(not exported)"
	}
	return fmt.Sprintf("%.0f", v)
}

func kindString(kinds map[string]int64) string {
	parts := make([]string, 0, len(kinds))
	for k, v := range kinds {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// writeRehearsal puts the report's JSON, HTML and text in dir, named after
// the plan, the start time and the run id.
func writeRehearsal(dir string, r *Rehearsal) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("results dir: %w", err)
	}
	name := strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			return c
		}
		return '-'
	}, r.Name)
	base := filepath.Join(dir, fmt.Sprintf("%s-%s-%s", name, r.Started.Format("20060102T150405Z"), r.Run))
	files := map[string]string{"json": base + ".json", "html": base + ".html", "txt": base + ".txt"}
	r.Files = files
	j, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(files["json"], append(j, '\n'), 0o644); err != nil {
		return nil, err
	}
	var h bytes.Buffer
	if err := WriteHTML(&h, r); err != nil {
		return nil, err
	}
	if err := os.WriteFile(files["html"], h.Bytes(), 0o644); err != nil {
		return nil, err
	}
	var txt bytes.Buffer
	if err := WriteRehearsalSummary(&txt, r); err != nil {
		return nil, err
	}
	if err := os.WriteFile(files["txt"], txt.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return files, nil
}

// LoadRehearsal reads a rehearsal's JSON report.
func LoadRehearsal(path string) (*Rehearsal, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Rehearsal
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.Total == nil {
		return nil, fmt.Errorf("%s: not a rehearsal report (no total)", path)
	}
	return &r, nil
}
