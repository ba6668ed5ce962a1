package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteSummary writes the report as a table: per target its throughput,
// latency percentiles, outcomes, ratios to each baseline and its verdict,
// then every broken invariant.
func WriteSummary(w io.Writer, r *Report) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s run %s  %s  %d CPUs (%s), load %.2f at start, %s\n", r.Scenario, r.Run,
		r.Started.Format("2006-01-02 15:04:05Z"), r.Machine.CPUs, r.Machine.CPUModel, r.Machine.Load1, r.Machine.GoVersion)
	if r.Command != "" {
		fmt.Fprintf(&b, "command: %s\n", r.Command)
	}
	fmt.Fprintf(&b, "params: %s\n\n", paramString(r.Params))
	var bases []string
	for _, x := range Baselines {
		for _, res := range r.Results {
			if res.Target == x && res.Error == "" && res.Throughput > 0 {
				bases = append(bases, x)
			}
		}
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "target\tthroughput\tunit/s\tops/s\tok\trefused\terrors\tp50 ms\tp90 ms\tp99 ms\tmax ms\t"
	for _, x := range bases {
		head += "× " + x + "\t"
	}
	fmt.Fprintln(tw, head+"check\t")
	for _, res := range r.Results {
		if res.Error != "" {
			continue
		}
		row := fmt.Sprintf("%s\t%.0f\t%s/s\t%.0f\t%d\t%d\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t", res.Target, res.Throughput, res.Unit,
			res.OpsPerSec, res.OK, res.Refused, res.Errors, res.Latency.P50, res.Latency.P90, res.Latency.P99, res.Latency.Max)
		for _, x := range bases {
			if v, ok := res.Ratios[x]; ok {
				row += fmt.Sprintf("%.2f\t", v)
			} else {
				row += "–\t"
			}
		}
		verdict := "ok"
		if !res.Passed {
			verdict = "BROKEN"
		}
		fmt.Fprintln(tw, row+verdict+"\t")
	}
	tw.Flush()
	for _, res := range r.Results {
		if res.Error != "" {
			fmt.Fprintf(&b, "%s FAILED: %s\n", res.Target, res.Error)
		}
	}
	for _, res := range r.Results {
		if len(res.ErrorKinds) > 0 {
			kinds := make([]string, 0, len(res.ErrorKinds))
			for k, v := range res.ErrorKinds {
				kinds = append(kinds, fmt.Sprintf("%s=%d", k, v))
			}
			sort.Strings(kinds)
			fmt.Fprintf(&b, "%s outcomes other than success: %s (unknown outcome: %d)\n", res.Target, strings.Join(kinds, " "), res.Unknown)
		}
	}
	cpuShown := false
	for _, res := range r.Results {
		if len(res.CPU) > 0 {
			fmt.Fprintf(&b, "%s CPU during the load (%% of one core): %s\n", res.Target, cpuString(res.CPU, r.Machine.CPUs))
			if len(res.CPUPerOp) > 0 {
				fmt.Fprintf(&b, "%s CPU per %s (µs): %s\n", res.Target, strings.TrimSuffix(res.Unit, "s"), perOpString(res.CPUPerOp))
			}
			cpuShown = true
		}
	}
	if cpuShown {
		fmt.Fprintf(&b, "(redis is the CPU of the run's Redis server from its INFO cpu, every client's work included: give the run a Redis of its own (--redis-url) to see only the run's; postgres counts all its processes)\n")
	}
	for _, res := range r.Results {
		if v, ok := res.Extra["persisted_events_per_sec"].(float64); ok {
			fmt.Fprintf(&b, "%s ledger: the persister wrote %.0f events/s during the load (%.0f%% of the target's %s/s); the check found it drained %.1fs after\n",
				res.Target, v, 100*v/math.Max(res.Throughput, 1), res.Unit, res.Extra["ledger_check_seconds"])
		}
	}
	if gs := Goals(r); len(gs) > 0 {
		fmt.Fprintf(&b, "\ngoals, measured in this run:\n")
		for _, g := range gs {
			fmt.Fprintf(&b, "  %s\n", g)
		}
	}
	fmt.Fprintln(&b)
	broken := false
	for _, res := range r.Results {
		for _, c := range res.Checks {
			mark := "ok    "
			if !c.Passed {
				mark = "BROKEN"
			}
			fmt.Fprintf(&b, "  %s %-14s %-28s %s\n", mark, res.Target, c.Name, c.Detail)
		}
		if len(res.Violations) > 0 {
			broken = true
		}
	}
	switch {
	case broken:
		fmt.Fprintf(&b, "\n!!! INVARIANTS BROKEN: this run's numbers mean nothing until the violations above are fixed !!!\n")
		for _, res := range r.Results {
			for _, v := range res.Violations {
				fmt.Fprintf(&b, "!!! %s: %s\n", res.Target, v)
			}
		}
	case !r.Passed:
		fmt.Fprintf(&b, "\n!!! RUN FAILED: a target could not run !!!\n")
	default:
		fmt.Fprintf(&b, "\nevery invariant held\n")
	}
	for _, k := range []string{"json", "svg", "txt"} {
		if p := r.Files[k]; p != "" {
			fmt.Fprintf(&b, "%s: %s\n", k, p)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

func paramString(p map[string]any) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, p[k])
	}
	return strings.Join(parts, " ")
}

// write puts the report's JSON, SVG plot and summary text in dir, named
// after the scenario, the start time and the run id.
func write(dir string, r *Report) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("results dir: %w", err)
	}
	base := filepath.Join(dir, fmt.Sprintf("%s-%s-%s", r.Scenario, r.Started.Format("20060102T150405Z"), r.Run))
	files := map[string]string{"json": base + ".json", "svg": base + ".svg", "txt": base + ".txt"}
	r.Files = files
	j, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(files["json"], append(j, '\n'), 0o644); err != nil {
		return nil, err
	}
	var svg bytes.Buffer
	if err := WritePlot(&svg, r); err != nil {
		return nil, err
	}
	if err := os.WriteFile(files["svg"], svg.Bytes(), 0o644); err != nil {
		return nil, err
	}
	var txt bytes.Buffer
	if err := WriteSummary(&txt, r); err != nil {
		return nil, err
	}
	if err := os.WriteFile(files["txt"], txt.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return files, nil
}

func perOpString(per map[string]float64) string {
	var parts []string
	for _, k := range []string{"bench_process", "inventory_servers", "redis", "postgres", "load_tool"} {
		if v, ok := per[k]; ok && v >= 0.05 {
			parts = append(parts, fmt.Sprintf("%s %.1f", k, v))
		}
	}
	return strings.Join(parts, ", ")
}

func cpuString(cpu map[string]float64, cpus int) string {
	var parts []string
	for _, k := range []string{"bench_process", "inventory_servers", "redis", "postgres", "load_tool"} {
		if v, ok := cpu[k]; ok && v >= 0.5 {
			parts = append(parts, fmt.Sprintf("%s %.0f%%", k, v))
		}
	}
	parts = append(parts, fmt.Sprintf("machine %.0f%% of %d%%", cpu["machine"], 100*cpus))
	return strings.Join(parts, ", ")
}
