package bench

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"
)

// series is one line of a chart.
type series struct {
	name, color, dash string
	pts               [][2]float64
}

var opColors = map[string]string{
	OpCheckout: "#1f77b4", OpReserve: "#ff7f0e", OpCommit: "#2ca02c", OpRelease: "#d62728", OpRead: "#9467bd",
	OpAvailability: "#8c564b", OpAdjust: "#e377c2", OpBulk: "#17becf",
	OpTransfer: "#bcbd22", OpReceive: "#7f7f7f", OpCancel: "#aec7e8", "all": "#222",
}

// chart draws series over seconds as an inline SVG, with the stages as
// shaded bands; log puts the y axis on a log scale.
func chart(title, ylab string, tmax float64, stages []StageSummary, ss []series, log bool) template.HTML {
	const W, H, x0, y0, pw, ph = 1100.0, 330.0, 70.0, 30.0, 820.0, 250.0
	ymin, ymax := math.Inf(1), 0.0
	for _, s := range ss {
		for _, p := range s.pts {
			if !log || p[1] > 0 {
				ymin, ymax = math.Min(ymin, p[1]), math.Max(ymax, p[1])
			}
		}
	}
	if math.IsInf(ymin, 1) {
		ymin, ymax = 0, 1
	}
	var lo, hi float64
	if log {
		lo, hi = decades(ymin, ymax)
	} else {
		lo, hi = 0, niceMax(ymax)
	}
	tmax = math.Max(tmax, 1)
	px := func(t float64) float64 { return x0 + pw*t/tmax }
	py := func(v float64) float64 {
		f := 0.0
		if log {
			f = (math.Log10(math.Max(v, math.Pow(10, lo))) - lo) / (hi - lo)
		} else {
			f = (v - lo) / (hi - lo)
		}
		return y0 + ph*(1-math.Max(0, math.Min(1, f)))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="11">`, W, H, W, H)
	fmt.Fprintf(&b, `<text x="%g" y="18" font-size="14" font-weight="bold">%s</text>`, x0, template.HTMLEscapeString(title))
	for i, s := range stages {
		fill := "#f4f6fa"
		if i%2 == 1 {
			fill = "#e9edf5"
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%g" width="%.1f" height="%g" fill="%s"/>`, px(s.From), y0, px(math.Min(s.To, tmax))-px(s.From), ph, fill)
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" fill="#667">%s</text>`, px(s.From)+3, y0+12, template.HTMLEscapeString(s.Name))
	}
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#333"/>`, x0, y0, pw, ph)
	if log {
		for d := lo; d <= hi+1e-9; d++ {
			y := py(math.Pow(10, d))
			fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ccc"/><text x="%g" y="%.1f" text-anchor="end">%s</text>`, x0, y, x0+pw, y, x0-5, y+4, decade(d))
		}
	} else {
		for i := 0; i <= 4; i++ {
			v := lo + (hi-lo)*float64(i)/4
			y := py(v)
			fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ccc"/><text x="%g" y="%.1f" text-anchor="end">%s</text>`, x0, y, x0+pw, y, x0-5, y+4, shortNum(v))
		}
	}
	step := niceStep(tmax)
	for t := 0.0; t <= tmax+1e-9; t += step {
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle">%g</text>`, px(t), y0+ph+14, t)
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle">seconds since the load began</text>`, x0+pw/2, y0+ph+30)
	fmt.Fprintf(&b, `<text transform="translate(16 %g) rotate(-90)" text-anchor="middle">%s</text>`, y0+ph/2, template.HTMLEscapeString(ylab))
	for i, s := range ss {
		if len(s.pts) == 0 {
			continue
		}
		var d strings.Builder
		for j, p := range s.pts {
			cmd := "L"
			if j == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&d, "%s%.1f %.1f ", cmd, px(p[0]), py(p[1]))
		}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="1.8" stroke-dasharray="%s"/>`, d.String(), s.color, s.dash)
		ly := y0 + 8 + 16*float64(i)
		fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="%s" stroke-width="2" stroke-dasharray="%s"/><text x="%g" y="%.1f">%s</text>`,
			x0+pw+12, ly, x0+pw+36, ly, s.color, s.dash, x0+pw+42, ly+4, template.HTMLEscapeString(s.name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	m := math.Pow(10, math.Floor(math.Log10(v)))
	for _, f := range []float64{1, 2, 2.5, 5, 10} {
		if f*m >= v {
			return f * m
		}
	}
	return 10 * m
}

func shortNum(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.3gk", v/1e3)
	}
	return fmt.Sprintf("%.3g", v)
}

// htmlRow is one row of a table of operations.
type htmlRow struct {
	Stage, Op string
	S         *OpSummary
}

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"ms":  func(v float64) string { return fmt.Sprintf("%.2f", v) },
	"pct": func(v float64) string { return fmt.Sprintf("%.3g%%", 100*v) },
	"f0":  func(v float64) string { return fmt.Sprintf("%.0f", v) },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.R.Name}}: rehearsal {{.R.Run}}</title>
<style>
body{font-family:sans-serif;margin:24px;color:#222;max-width:1150px}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:13px} td,th{padding:3px 9px;border-bottom:1px solid #eee;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
.pass{color:#0a7d27;font-weight:bold} .fail{color:#c00;font-weight:bold} .muted{color:#667;font-size:13px}
.verdict{font-size:20px;padding:8px 12px;display:inline-block;border-radius:4px;margin:10px 0}
.vp{background:#e3f5e8} .vf{background:#fbe3e3}
</style></head><body>
<h1>{{.R.Name}}: rehearsal {{.R.Run}}</h1>
<div class="muted">{{.R.Started.Format "2006-01-02 15:04:05Z"}} against {{.R.URL}}, {{.R.Processes}} load process(es); {{.Mode}}.<br>
{{.R.Machine.CPUs}} CPUs ({{.R.Machine.CPUModel}}), load {{printf "%.2f" .R.Machine.Load1}} at start, {{.R.Machine.GoVersion}}{{if .R.Command}}<br><code>{{.R.Command}}</code>{{end}}</div>
{{if .R.Passed}}<div class="verdict vp">passed: every invariant and every threshold held</div>{{else}}<div class="verdict vf">FAILED{{range .R.Violations}}<br>{{.}}{{end}}{{range .R.Thresholds}}{{if not .Held}}<br>threshold {{.Text}}: measured {{.Detail}}{{end}}{{end}}</div>{{end}}
<p>{{.R.Iterations}} iterations in {{printf "%.1f" .R.Seconds}} s; {{.R.Late}} ({{printf "%.2f" .LatePct}}%) sent late for want of an in-flight slot; send delay p99 {{ms .R.SendDelay.P99}} ms; at most {{.R.MaxInFlight}} requests in flight.{{if gt .R.Processes 1}} The {{.R.Processes}} load processes began within {{printf "%.1f" .R.StartSpread}} ms of each other.{{end}}</p>
{{if .R.Thresholds}}<h2>Thresholds</h2><table><tr><th>threshold</th><th>measured</th><th>verdict</th></tr>
{{range .R.Thresholds}}<tr><td><code>{{.Text}}</code></td><td>{{.Detail}}</td><td>{{if .Held}}<span class="pass">held</span>{{else}}<span class="fail">FAILED</span>{{end}}</td></tr>{{end}}</table>{{end}}
<h2>Throughput</h2>{{.Rate}}
<h2>Latency over time</h2>{{.Latency}}{{.OpLatency}}
<h2>Per stage and operation</h2>
<table><tr><th>stage</th><th>op</th><th>requests</th><th>rate/s</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th></tr>
{{range .StageRows}}<tr><td>{{.Stage}}</td><td>{{.Op}}</td><td>{{.S.Count}}</td><td>{{f0 .S.Rate}}</td><td>{{ms .S.Latency.P50}}</td><td>{{ms .S.Latency.P90}}</td><td>{{ms .S.Latency.P99}}</td><td>{{ms .S.Latency.P999}}</td><td>{{ms .S.Latency.Max}}</td></tr>{{end}}</table>
<h2>Whole run per operation</h2>
<table><tr><th>op</th><th>requests</th><th>rate/s</th><th>ok</th><th>refused</th><th>errors</th><th>error rate</th><th>unknown</th><th>retries</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th></tr>
{{range .OpRows}}<tr><td>{{.Op}}</td><td>{{.S.Count}}</td><td>{{f0 .S.Rate}}</td><td>{{.S.OK}}</td><td>{{.S.Refused}}</td><td>{{.S.Errors}}</td><td>{{pct .S.ErrorRate}}</td><td>{{.S.Unknown}}</td><td>{{.S.Retries}}</td><td>{{ms .S.Latency.P50}}</td><td>{{ms .S.Latency.P99}}</td><td>{{ms .S.Latency.Max}}</td></tr>{{end}}</table>
<h2>Outcomes other than success, by kind</h2>
{{if .Kinds}}<table><tr><th>op</th><th>kind</th><th>count</th></tr>{{range .Kinds}}<tr><td>{{index . 0}}</td><td>{{index . 1}}</td><td>{{index . 2}}</td></tr>{{end}}</table>{{else}}<p>none</p>{{end}}
<h2>Server metrics</h2>
{{if .R.Metrics}}{{.Backlog}}{{.Shed}}{{else}}<p>not sampled{{if .R.MetricsError}}: {{.R.MetricsError}}{{end}}</p>{{end}}
<h2>Checks</h2><table><tr><th>check</th><th>verdict</th><th>detail</th></tr>
{{range .R.Checks}}<tr><td>{{.Name}}</td><td>{{if .Passed}}<span class="pass">ok</span>{{else}}<span class="fail">BROKEN</span>{{end}}</td><td style="text-align:left">{{.Detail}}</td></tr>{{end}}</table>
<p class="muted">Latency counts from when each request was due on the schedule (open loop), so a server that stalls shows as latency, not as fewer requests. Written by <code>inventory bench</code>.</p>
</body></html>
`))

// WriteHTML writes the rehearsal as one self-contained HTML page (inline
// SVG charts, no script, nothing fetched): the verdict and thresholds,
// offered and achieved rates and latency percentiles per second with the
// stages shaded, per stage and per operation tables, errors by kind, the
// server's sampled metrics and the checks.
func WriteHTML(w io.Writer, r *Rehearsal) error {
	tmax := math.Max(r.Seconds, float64(len(r.Timeline)))
	var target, offered, achieved, errs, p50, p99 [][2]float64
	perOp := map[string][][2]float64{}
	for _, s := range r.Timeline {
		t := float64(s.T) + 0.5
		if s.Stage != "after" {
			target = append(target, [2]float64{t, s.Target})
		}
		offered = append(offered, [2]float64{t, float64(s.Offered)})
		achieved = append(achieved, [2]float64{t, float64(s.Achieved)})
		errs = append(errs, [2]float64{t, float64(s.Errors)})
		if s.Latency.Count > 0 {
			p50 = append(p50, [2]float64{t, s.Latency.P50})
			p99 = append(p99, [2]float64{t, s.Latency.P99})
		}
		for op, l := range s.Ops {
			if l.Count > 0 {
				perOp[op] = append(perOp[op], [2]float64{t, l.P99})
			}
		}
	}
	var opSeries []series
	for _, op := range allOps {
		if pts := perOp[op]; len(pts) > 0 {
			opSeries = append(opSeries, series{name: op + " p99", color: opColors[op], pts: pts})
		}
	}
	var lag, stream, shed [][2]float64
	for i, m := range r.Metrics {
		if m.PersisterLag >= 0 {
			lag = append(lag, [2]float64{m.T, m.PersisterLag})
		}
		if m.StreamLength >= 0 {
			stream = append(stream, [2]float64{m.T, m.StreamLength})
		}
		if i > 0 && m.Shed >= 0 {
			prev := r.Metrics[i-1]
			if dt := m.T - prev.T; dt > 0 {
				shed = append(shed, [2]float64{m.T, math.Max(0, m.Shed-prev.Shed) / dt})
			}
		}
	}
	mode := "open loop, latency from when each request was due"
	if r.Plan.Client.ClosedLoop > 0 {
		mode = fmt.Sprintf("closed loop of %d workers, latency from each send", r.Plan.Client.ClosedLoop)
	}
	var stageRows, opRows []htmlRow
	for _, s := range r.Stages {
		for _, op := range allOps {
			if o := s.Ops[op]; o != nil && o.Count > 0 {
				stageRows = append(stageRows, htmlRow{Stage: s.Name, Op: op, S: o})
			}
		}
		stageRows = append(stageRows, htmlRow{Stage: s.Name, Op: "all", S: s.Total})
	}
	var kinds [][3]any
	for _, op := range allOps {
		if o := r.Ops[op]; o != nil {
			opRows = append(opRows, htmlRow{Op: op, S: o})
			for _, k := range sortedKeys(o.Kinds) {
				kinds = append(kinds, [3]any{op, k, o.Kinds[k]})
			}
		}
	}
	if r.Total != nil {
		opRows = append(opRows, htmlRow{Op: "all", S: r.Total})
	}
	return reportTmpl.Execute(w, map[string]any{
		"R": r, "Mode": mode, "LatePct": pct(r.Late, r.Iterations), "StageRows": stageRows, "OpRows": opRows, "Kinds": kinds,
		"Rate": chart("Iterations per second: offered (due on the schedule) and achieved (answered)", "per second", tmax, r.Stages, []series{
			{name: "offered", color: "#1f77b4", pts: offered},
			{name: "achieved", color: "#2ca02c", pts: achieved},
			{name: "errors", color: "#d62728", pts: errs},
			{name: "target rate", color: "#555", dash: "5 4", pts: target},
		}, false),
		"Latency": chart("Latency of the requests due in each second, all operations", "ms (log scale)", tmax, r.Stages, []series{
			{name: "p50", color: "#222", pts: p50},
			{name: "p99", color: "#d62728", dash: "6 3", pts: p99},
		}, true),
		"OpLatency": chart("p99 per operation", "ms (log scale)", tmax, r.Stages, opSeries, true),
		"Backlog": chart("Persister lag and stream length (server /metrics)", "events", tmax, r.Stages, []series{
			{name: "persister lag", color: "#ff7f0e", pts: lag},
			{name: "stream length", color: "#9467bd", pts: stream},
		}, false),
		"Shed": chart("Requests shed by the server's in-flight limit (503)", "per second", tmax, r.Stages, []series{
			{name: "shed", color: "#d62728", pts: shed},
		}, false),
	})
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
