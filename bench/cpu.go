package bench

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// clkTck is the kernel's clock ticks per second in /proc (USER_HZ), 100 on
// every Linux this runs on.
const clkTck = 100

// cpuSample is CPU time used so far: by this process, by Redis, by
// PostgreSQL (all its processes), and by the whole machine, from /proc.
// Outside Linux it is empty and the report shows no CPU split.
type cpuSample struct {
	at    time.Time
	procs map[string]float64 // seconds per group
	busy  float64            // seconds the machine's CPUs were busy
	ok    bool
}

var cpuGroups = map[string]string{
	"redis-server": "redis", "postgres": "postgres", "wrk": "load_tool", "redis-benchmark": "load_tool",
	"inventory": "inventory_servers", // an inventory serve on this machine (the http target)
}

func sampleCPU() cpuSample {
	s := cpuSample{at: time.Now(), procs: map[string]float64{}}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return s
	}
	for i, v := range f[1:8] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseFloat(v, 64)
		s.busy += n / clkTck
	}
	self := strconv.Itoa(os.Getpid())
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		st := string(b)
		open, close := strings.IndexByte(st, '('), strings.LastIndexByte(st, ')')
		if open < 0 || close < open {
			continue
		}
		comm := st[open+1 : close]
		rest := strings.Fields(st[close+1:])
		if len(rest) < 13 {
			continue
		}
		ut, _ := strconv.ParseFloat(rest[11], 64)
		stt, _ := strconv.ParseFloat(rest[12], 64)
		secs := (ut + stt) / clkTck
		switch g := cpuGroups[comm]; {
		case filepath.Base(d) == self:
			s.procs["bench_process"] += secs
		case g != "":
			s.procs[g] += secs
		}
	}
	if f := redisCPU.Load(); f != nil {
		if secs, ok := (*f)(); ok {
			s.procs["redis"] = secs
		}
	}
	s.ok = true
	return s
}

// redisCPU, when set, reads the CPU seconds of the run's Redis server
// (INFO cpu): exact for that server, where the sum of every redis-server
// process on the machine also counts other servers'.
var redisCPU atomic.Pointer[func() (float64, bool)]

// watchRedisCPU makes sampleCPU read Redis' CPU from rdb's INFO cpu; the
// returned function stops it.
func watchRedisCPU(rdb redis.UniversalClient) func() {
	f := func() (float64, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		info, err := rdb.Info(ctx, "cpu").Result()
		if err != nil {
			return 0, false
		}
		var secs float64
		n := 0
		for _, line := range strings.Split(info, "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
			if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
				x, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return 0, false
				}
				secs += x
				n++
			}
		}
		return secs, n == 2
	}
	redisCPU.Store(&f)
	return func() { redisCPU.CompareAndSwap(&f, nil) }
}

// cpuUse is the CPU each group used between two samples, in percent of one
// core ("machine" is every process on it; 100% per core).
func cpuUse(a, b cpuSample) map[string]float64 {
	wall := b.at.Sub(a.at).Seconds()
	if !a.ok || !b.ok || wall <= 0 {
		return nil
	}
	out := map[string]float64{"machine": 100 * (b.busy - a.busy) / wall}
	for k, v := range b.procs {
		out[k] = 100 * (v - a.procs[k]) / wall
	}
	return out
}
