package bench

import (
	"context"
	"encoding/csv"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisBenchmarkRequests is the number of EVALSHA calls the redis-benchmark
// target makes.
const RedisBenchmarkRequests = 200000

// redisBenchmark runs `redis-benchmark -n 200000 -c 50 --csv EVALSHA <sha of
// "return 1"> 0` on the run's Redis: the rate of one unpipelined round trip
// per request with 50 clients, the ceiling of any design that makes one
// script call per buyer.
func redisBenchmark(ctx context.Context, cfg Config) (*outcome, error) {
	bin, err := exec.LookPath("redis-benchmark")
	if err != nil {
		return nil, fmt.Errorf("redis-benchmark not found on PATH (Debian: apt-get install redis-tools)")
	}
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	sha, err := rdb.ScriptLoad(ctx, "return 1").Result()
	if err != nil {
		return nil, fmt.Errorf("load trivial script: %w", err)
	}
	host, port, _ := strings.Cut(opt.Addr, ":")
	args := []string{"-h", host, "-p", port, "-n", strconv.Itoa(RedisBenchmarkRequests), "-c", "50", "--csv"}
	if opt.Password != "" {
		args = append(args, "-a", opt.Password)
	}
	if opt.DB != 0 {
		args = append(args, "--dbnum", strconv.Itoa(opt.DB))
	}
	args = append(args, "EVALSHA", sha, "0")
	rctx, cancel := context.WithTimeout(ctx, cfg.Duration+30*time.Second)
	defer cancel()
	fmt.Fprintf(cfg.Progress, "[%s] %s %s\n", TargetRedisBenchmark, bin, strings.Join(args, " "))
	start := time.Now()
	cpu0 := sampleCPU()
	out, err := exec.CommandContext(rctx, bin, args...).Output()
	elapsed := time.Since(start)
	cpu := cpuUse(cpu0, sampleCPU())
	if err != nil {
		return nil, fmt.Errorf("redis-benchmark: %w", err)
	}
	recs, err := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	if err != nil || len(recs) < 2 || len(recs[1]) < 8 {
		return nil, fmt.Errorf("redis-benchmark: unexpected output %q", out)
	}
	f := func(i int) float64 { v, _ := strconv.ParseFloat(recs[1][i], 64); return v }
	rps := f(1)
	o := &outcome{rec: newRecorder(start, time.Second), elapsed: elapsed, unit: "calls", units: RedisBenchmarkRequests}
	o.extra = map[string]any{"command": bin + " " + strings.Join(args, " "), "rps": rps,
		"latency_ms": map[string]float64{"avg": f(2), "min": f(3), "p50": f(4), "p95": f(5), "p99": f(6), "max": f(7)}}
	o.rps, o.cpu = rps, cpu
	o.latency = &Latency{Count: RedisBenchmarkRequests, Mean: f(2), P50: f(4), P90: f(5), P99: f(6), Max: f(7)}
	fmt.Fprintf(cfg.Progress, "[%s] %.0f calls/s, p50 %.3f ms, p99 %.3f ms\n", TargetRedisBenchmark, rps, f(4), f(6))
	return o, nil
}
