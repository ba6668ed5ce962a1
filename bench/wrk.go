package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Load clients.
const (
	ClientBuiltin = "builtin"
	ClientWrk     = "wrk"
)

// wrkScript makes wrk POST one checkout per request and count the answers
// by status in every thread; done prints the totals on one line.
const wrkScript = `
wrk.method = "POST"
wrk.body = %q
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = %q
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; refused = 0; other = 0 end
function response(status, headers, body)
  if status == 200 then ok = ok + 1 elseif status == 409 then refused = refused + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local o, r, x = 0, 0, 0
  for _, t in ipairs(threads) do o = o + t:get("ok"); r = r + t:get("refused"); x = x + t:get("other") end
  local e = summary.errors
  io.write(string.format("WRKRESULT %%d %%d %%d %%d %%d %%d %%d %%d %%d %%d %%d %%d %%d\n", o, r, x, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.timeout))
end
`

// httpEndpoint returns the base URL and Authorization header of a target
// driven over HTTP.
func httpEndpoint(t target) (base, auth string, ok bool) {
	switch x := t.(type) {
	case *httpClient:
		return x.base, x.auth, true
	case *serverTarget:
		return x.base, x.auth, true
	case *bareTarget:
		return x.base, x.auth, true
	}
	return "", "", false
}

// wrkCounts is what wrk reported.
type wrkCounts struct {
	ok, refused, other, errors int64
	elapsed                    time.Duration
	latency                    Latency
	cpu                        map[string]float64
}

// runWrk drives one flash-sale checkout URL with wrk for the configured
// duration: 2 threads, Workers connections. wrk cannot stop a buyer at the
// first refusal, so it keeps asking until its time is up.
func runWrk(ctx context.Context, cfg Config, name, base, auth, store string, lines []Line) (*wrkCounts, error) {
	bin, err := exec.LookPath("wrk")
	if err != nil {
		return nil, fmt.Errorf("wrk not found on PATH (Debian: apt-get install wrk)")
	}
	body := `{"lines":[`
	for i, l := range lines {
		if i > 0 {
			body += ","
		}
		body += fmt.Sprintf(`{"sku":%q,"qty":%d}`, l.SKU, l.Qty)
	}
	body += `]}`
	dir, err := os.MkdirTemp("", "inventory-wrk-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "checkout.lua")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(wrkScript, body, auth)), 0o600); err != nil {
		return nil, err
	}
	secs := max(1, int(cfg.Duration.Round(time.Second)/time.Second))
	args := []string{"-t2", "-c" + strconv.Itoa(cfg.Workers), "-d" + strconv.Itoa(secs) + "s", "--timeout", "10s",
		"-s", script, base + "/v1/stores/" + store + "/checkout"}
	fmt.Fprintf(cfg.Progress, "[%s] %s %s\n", name, bin, strings.Join(args, " "))
	wctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+30*time.Second)
	defer cancel()
	cpu0 := sampleCPU()
	out, err := exec.CommandContext(wctx, bin, args...).CombinedOutput()
	cpu := cpuUse(cpu0, sampleCPU())
	if err != nil {
		return nil, fmt.Errorf("wrk: %w: %s", err, snippet(out))
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 14 || f[0] != "WRKRESULT" {
			continue
		}
		n := make([]int64, 13)
		for i := range n {
			v, err := strconv.ParseFloat(f[i+1], 64)
			if err != nil {
				return nil, fmt.Errorf("wrk: bad result line %q", sc.Text())
			}
			n[i] = int64(v)
		}
		ms := func(us int64) float64 { return float64(us) / 1000 }
		c := &wrkCounts{ok: n[0], refused: n[1], other: n[2], elapsed: time.Duration(n[3]) * time.Microsecond,
			errors: n[9] + n[10] + n[11] + n[12], cpu: cpu}
		c.latency = Latency{Count: n[0] + n[1] + n[2], P50: ms(n[4]), P90: ms(n[5]), P99: ms(n[6]), Max: ms(n[7]), Mean: ms(n[8])}
		fmt.Fprintf(cfg.Progress, "[%s] wrk: %d ok, %d refused, %d other statuses, %d socket errors in %s\n",
			name, c.ok, c.refused, c.other, c.errors, c.elapsed.Round(time.Millisecond))
		return c, nil
	}
	return nil, fmt.Errorf("wrk: no result line in %q", snippet(out))
}
