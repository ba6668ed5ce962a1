package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

var palette = map[string]string{
	TargetEngine: "#1f77b4", TargetHTTP: "#2ca02c", TargetServer: "#17becf", TargetBare: "#9467bd",
	TargetPGGuarded: "#d62728", TargetPGOptimistic: "#ff7f0e", TargetRedisBenchmark: "#7f7f7f",
}

// panel is one chart of the plot: a log-scale y axis over seconds.
type panel struct {
	x, y, w, h  float64
	tmax        float64
	lo, hi      float64 // decades: 10^lo .. 10^hi
	title, ylab string
}

func (p panel) px(t float64) float64 { return p.x + p.w*t/p.tmax }

func (p panel) py(v float64) float64 {
	if v <= 0 {
		v = math.Pow(10, p.lo)
	}
	f := (math.Log10(v) - p.lo) / (p.hi - p.lo)
	return p.y + p.h*(1-math.Max(0, math.Min(1, f)))
}

func (p panel) axes(b *strings.Builder) {
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", p.x, p.y, p.w, p.h)
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="15" font-weight="bold">%s</text>`+"\n", p.x, p.y-10, html.EscapeString(p.title))
	for d := p.lo; d <= p.hi+1e-9; d++ {
		y := p.py(math.Pow(10, d))
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", p.x, y, p.x+p.w, y)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="end">%s</text>`+"\n", p.x-6, y+4, decade(d))
	}
	step := niceStep(p.tmax)
	for t := 0.0; t <= p.tmax+1e-9; t += step {
		x := p.px(t)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", x, p.y, x, p.y+p.h)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="middle">%g</text>`+"\n", x, p.y+p.h+15, t)
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="12" text-anchor="middle">seconds since the target's load began</text>`+"\n", p.x+p.w/2, p.y+p.h+32)
	fmt.Fprintf(b, `<text transform="translate(%.1f %.1f) rotate(-90)" font-size="12" text-anchor="middle">%s</text>`+"\n", p.x-52, p.y+p.h/2, html.EscapeString(p.ylab))
}

func decade(d float64) string {
	v := math.Pow(10, d)
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return fmt.Sprintf("%g", v)
}

func niceStep(tmax float64) float64 {
	for _, s := range []float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 600} {
		if tmax/s <= 12 {
			return s
		}
	}
	return 1200
}

func (p panel) line(b *strings.Builder, pts [][2]float64, color, dash string) {
	if len(pts) == 0 {
		return
	}
	var d strings.Builder
	for i, pt := range pts {
		cmd := "L"
		if i == 0 {
			cmd = "M"
		}
		fmt.Fprintf(&d, "%s%.1f %.1f ", cmd, p.px(pt[0]), p.py(pt[1]))
	}
	fmt.Fprintf(b, `<path d="%s" fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s"/>`+"\n", d.String(), color, dash)
	if len(pts) == 1 {
		fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", p.px(pts[0][0]), p.py(pts[0][1]), color)
	}
}

func decades(min, max float64) (float64, float64) {
	if min <= 0 || math.IsInf(min, 1) {
		min = 0.01
	}
	if max <= min {
		max = min * 10
	}
	return math.Floor(math.Log10(min)), math.Ceil(math.Log10(max))
}

// WritePlot draws the report's timelines as an SVG: p50 (solid) and p99
// (dashed) latency per second per target, and operations per second per
// target, both on log scales so a baseline and the engine fit one chart.
func WritePlot(w io.Writer, r *Report) error {
	const width, height = 1080.0, 840.0
	tmax := 1.0
	latMin, latMax := math.Inf(1), 0.0
	rateMin, rateMax := math.Inf(1), 0.0
	for _, res := range r.Results {
		for _, s := range res.Timeline {
			tmax = math.Max(tmax, s.T+s.Width)
			latMin = math.Min(latMin, math.Max(s.Latency.P50, 0.001))
			latMax = math.Max(latMax, s.Latency.P99)
			rateMin = math.Min(rateMin, math.Max(s.Rate, 1))
			rateMax = math.Max(rateMax, s.Rate)
		}
	}
	tmax = math.Ceil(tmax)
	lat := panel{x: 90, y: 110, w: 700, h: 280, tmax: tmax, title: "Latency of the operations begun in each slice of time: p50 solid, p99 dashed", ylab: "latency (ms, log scale)"}
	lat.lo, lat.hi = decades(latMin, latMax)
	ops := panel{x: 90, y: 490, w: 700, h: 280, tmax: tmax, title: "Operations per second (all outcomes)", ylab: "operations per second (log scale)"}
	ops.lo, ops.hi = decades(rateMin, rateMax)

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="90" y="30" font-size="18" font-weight="bold">inventory bench: %s, run %s, %s</text>`+"\n",
		html.EscapeString(r.Scenario), r.Run, r.Started.Format("2006-01-02 15:04Z"))
	sub := fmt.Sprintf("%d CPUs (%s), load %.2f at start, %s; %s", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.Load1, r.Machine.GoVersion, paramString(r.Params))
	for i, line := range wrap(sub, 150) {
		fmt.Fprintf(&b, `<text x="90" y="%d" font-size="12">%s</text>`+"\n", 50+16*i, html.EscapeString(line))
	}
	lat.axes(&b)
	ops.axes(&b)
	ly := 120.0
	spare := []string{"#8c564b", "#e377c2", "#bcbd22", "#393b79", "#637939", "#843c39"}
	for _, res := range r.Results {
		color := palette[res.Target]
		if color == "" {
			color = spare[0]
			spare = append(spare[1:], spare[0])
		}
		var p50, p99, rate [][2]float64
		for _, s := range res.Timeline {
			t := s.T + s.Width/2
			p50 = append(p50, [2]float64{t, s.Latency.P50})
			p99 = append(p99, [2]float64{t, s.Latency.P99})
			rate = append(rate, [2]float64{t, s.Rate})
		}
		lat.line(&b, p50, color, "")
		lat.line(&b, p99, color, "6 4")
		ops.line(&b, rate, color, "")
		label := res.Target
		switch {
		case res.Error != "":
			label += " (failed)"
		case !res.Passed:
			label += " (INVARIANT BROKEN)"
		case len(res.Timeline) == 0:
			label += fmt.Sprintf(" %.0f/s (no timeline)", res.Throughput)
		default:
			label += fmt.Sprintf(" %.0f %s/s", res.Throughput, res.Unit)
		}
		fmt.Fprintf(&b, `<line x1="805" y1="%.1f" x2="835" y2="%.1f" stroke="%s" stroke-width="3"/>`+"\n", ly, ly, color)
		fmt.Fprintf(&b, `<text x="840" y="%.1f" font-size="12">%s</text>`+"\n", ly+4, html.EscapeString(label))
		ly += 20
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// wrap breaks s into lines of at most n bytes at spaces.
func wrap(s string, n int) []string {
	var out []string
	for len(s) > n {
		i := strings.LastIndex(s[:n], " ")
		if i <= 0 {
			i = n
		}
		out = append(out, s[:i])
		s = strings.TrimLeft(s[i:], " ")
	}
	return append(out, s)
}
