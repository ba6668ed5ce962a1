package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MetricsSample is the server's /metrics read once, each metric summed over
// its series.
type MetricsSample struct {
	// T is seconds since the load's start (negative before it).
	T float64 `json:"t"`
	// PersisterLag is inventory_persister_lag_events (events not yet in the
	// ledger), StreamLength inventory_stream_length (entries in the
	// partitions' streams), Shed inventory_http_shed_total (requests
	// refused by the in-flight limit, a counter) and Requests the count of
	// inventory_http_request_duration_seconds (a counter); -1 when the
	// server does not export it.
	PersisterLag float64 `json:"persister_lag"`
	StreamLength float64 `json:"stream_length"`
	Shed         float64 `json:"shed"`
	Requests     float64 `json:"requests"`
}

// sampledMetrics are the series a sample sums, by field.
var sampledMetrics = []string{"inventory_persister_lag_events", "inventory_stream_length", "inventory_http_shed_total",
	"inventory_http_request_duration_seconds_count"}

// parseMetrics sums the samples of each of names in a Prometheus text
// exposition; a name absent is -1. The format is line-based and these are
// plain counters and gauges, so reading the name, the labels and the value
// of each line is all it takes (the Prometheus parser would add a
// dependency for what this does in a loop).
func parseMetrics(r io.Reader, names []string) ([]float64, error) {
	out := make([]float64, len(names))
	for i := range out {
		out[i] = -1
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		for i, n := range names {
			if n != name {
				continue
			}
			rest := line[len(name):]
			if strings.HasPrefix(rest, "{") {
				if j := strings.LastIndex(rest, "}"); j >= 0 {
					rest = rest[j+1:]
				}
			}
			f := strings.Fields(rest)
			if len(f) == 0 {
				continue
			}
			v, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				continue
			}
			if out[i] < 0 {
				out[i] = 0
			}
			out[i] += v
		}
	}
	return out, sc.Err()
}

// sampler reads the server's /metrics once a second until stopped.
type sampler struct {
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	samples []MetricsSample
	err     string
}

func startSampler(ctx context.Context, u string, start time.Time) *sampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &sampler{cancel: cancel, done: make(chan struct{})}
	if u == "off" {
		close(s.done)
		return s
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			v, err := scrape(ctx, hc, u)
			s.mu.Lock()
			if err != nil {
				if ctx.Err() == nil {
					s.err = err.Error()
				}
			} else {
				s.samples = append(s.samples, MetricsSample{T: time.Since(start).Seconds(), PersisterLag: v[0], StreamLength: v[1], Shed: v[2], Requests: v[3]})
			}
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func scrape(ctx context.Context, hc *http.Client, u string) ([]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %d", u, resp.StatusCode)
	}
	return parseMetrics(resp.Body, sampledMetrics)
}

// stop ends the sampling and returns the samples and the last error seen.
func (s *sampler) stop() ([]MetricsSample, string) {
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples, s.err
}
