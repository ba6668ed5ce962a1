package chaos

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/httpapi"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// Scenario 12: hostile and careless clients against the HTTP server:
// slowloris connections trickling their headers, requests with huge
// headers, and waves of SSE subscribers that connect and vanish. Meanwhile
// real clients keep selling: the server stays responsive (every probe
// answers, quickly), never answers a 5xx but 503 with Retry-After, its
// goroutines and heap come back down, and /readyz follows Redis' health.
func TestSlowClientsServerResponsive(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOpts{client: failFastClient})
	ctx := context.Background()
	_, _ = w.startPersister(w.dpool, persist.PersisterConfig{})
	const maxStreams = 64
	api := w.startAPI(func(c *httpapi.Config) {
		c.ReadTimeout = time.Second
		c.MaxStreams = maxStreams
		// One token subscribes every wave: it may take every slot, so the
		// waves reach the server's cap (503), not the token's share (429).
		c.MaxStreamsPerToken = maxStreams
		c.Heartbeat = 200 * time.Millisecond
		c.EventPoll = 50 * time.Millisecond
	})
	tr := &httpTraffic{traffic: newTraffic(t, w.e, trafficCfg{stores: []string{"s1", "s2"}, skus: []string{"sofa", "lamp"},
		initial: 100000, workers: 3, ops: pick(1500, 50000), dur: pick(6*time.Second, 60*time.Second)}),
		api: func() *apiServer { return api }, token: tokAdmin}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutines := serverGoroutines()

	attack, stopAttack := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var slowOpen, hugeAnswered, sseOpened, sseShed atomic.Int64
	// Slowloris: many connections, each trickling a header byte at a time.
	for i := 0; i < pick(150, 500); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", strings.TrimPrefix(api.url, "http://"), time.Second)
			if err != nil {
				return
			}
			defer c.Close()
			slowOpen.Add(1)
			req := "GET /v1/stores/s1/items/sofa HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tokAdmin + "\r\nX-Slow: "
			for j := 0; j < len(req)+200 && attack.Err() == nil; j++ { // bounded
				b := byte('a')
				if j < len(req) {
					b = req[j]
				}
				if _, err := c.Write([]byte{b}); err != nil {
					return // the server closed it: good
				}
				sleepCtx(attack, 300*time.Millisecond)
			}
		}()
	}
	// Huge headers: answered with a 4xx or a closed connection, never a 5xx.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 30 && attack.Err() == nil; i++ {
			rq, _ := http.NewRequest("GET", api.url+"/v1/stores/s1/items/sofa", nil)
			rq.Header.Set("Authorization", "Bearer "+tokAdmin)
			rq.Header.Set("X-Huge", strings.Repeat("x", (i%4+1)*256*1024))
			res, err := apiClient.Do(rq)
			if err != nil {
				continue
			}
			res.Body.Close()
			hugeAnswered.Add(1)
			if res.StatusCode >= 500 {
				t.Errorf("huge header answered %d", res.StatusCode)
			}
			sleepCtx(attack, 100*time.Millisecond)
		}
	}()
	// Waves of SSE subscribers that read a little and vanish, more than
	// the server takes at once.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for wave := 0; wave < pick(6, 40) && attack.Err() == nil; wave++ {
			var sw sync.WaitGroup
			for i := 0; i < maxStreams+20; i++ {
				sw.Add(1)
				go func() {
					defer sw.Done()
					c, err := net.DialTimeout("tcp", strings.TrimPrefix(api.url, "http://"), time.Second)
					if err != nil {
						return
					}
					defer c.Close() // vanish without a goodbye
					fmt.Fprintf(c, "GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n", tokAdmin)
					_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
					line, err := bufio.NewReader(c).ReadString('\n')
					switch {
					case err != nil:
					case strings.Contains(line, " 200 "):
						sseOpened.Add(1)
					case strings.Contains(line, " 503 "):
						sseShed.Add(1)
					default:
						t.Errorf("SSE subscribe answered %q", line)
					}
				}()
			}
			sw.Wait()
		}
	}()

	// Real clients, and a prober measuring how fast the server answers.
	done := make(chan struct{})
	go func() { tr.run(ctx); close(done) }()
	var lat []time.Duration
	probeEnd := time.Now().Add(pick(5*time.Second, 55*time.Second))
	for time.Now().Before(probeEnd) {
		t0 := time.Now()
		r, err := api.do("GET", "/healthz", "", "")
		require.NoError(t, err, "the server answers while under attack")
		require.Equal(t, 200, r.status)
		lat = append(lat, time.Since(t0))
		time.Sleep(50 * time.Millisecond) // probe interval
	}
	<-done
	stopAttack()
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p99 := lat[len(lat)*99/100]
	t.Logf("attack: %d slowloris connections, %d huge-header requests answered, SSE %d opened / %d shed; /healthz p50 %s p99 %s",
		slowOpen.Load(), hugeAnswered.Load(), sseOpened.Load(), sseShed.Load(), lat[len(lat)/2], p99)
	require.Less(t, p99, time.Second, "responsive under attack")
	require.Positive(t, sseOpened.Load())
	require.Positive(t, sseShed.Load(), "subscribers past MaxStreams are shed with 503")

	// Bounded: the feeds and connections are gone, the heap is back.
	back := func() bool { return serverGoroutines() < goroutines+20 }
	deadline := time.Now().Add(15 * time.Second)
	for !back() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	if !back() {
		t.Errorf("server goroutines: %d at the start, %d 15s after the attack:\n%s", goroutines, serverGoroutines(), goroutineSummary(8))
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	t.Logf("heap in use: %d MiB before, %d MiB after; server goroutines %d before, %d after",
		before.HeapInuse>>20, after.HeapInuse>>20, goroutines, serverGoroutines())
	require.Less(t, after.HeapInuse, before.HeapInuse+128<<20, "heap bounded")

	// Readiness follows reality.
	require.Equal(t, 200, api.must(t, "GET", "/readyz", "", "").status)
	w.rproxy.Cut()
	r := api.must(t, "GET", "/readyz", "", "")
	require.Equal(t, 503, r.status, "not ready while Redis is unreachable: %s", r.body)
	require.NotEmpty(t, r.header.Get("Retry-After"))
	r = api.must(t, "POST", "/v1/stores/s1/checkout", tokAdmin, `{"lines":[{"sku":"sofa","qty":1}]}`)
	require.Equal(t, 503, r.status, "a sale while Redis is unreachable: %s", r.body)
	require.NotEmpty(t, r.header.Get("Retry-After"))
	w.rproxy.Restore()
	testsupport.WaitFor(t, 5*time.Second, "ready again", func() bool {
		r, err := api.do("GET", "/readyz", "", "")
		return err == nil && r.status == 200
	})
	require.NoError(t, w.direct.Del(ctx, w.ins.ReadyKey(1)).Err())
	r = api.must(t, "GET", "/readyz", "", "")
	require.Equal(t, 503, r.status, "not ready while a partition is missing its marker")
	require.Contains(t, r.body, "partitions")
	require.NoError(t, w.ins.MarkReady(ctx, 1))
	require.Equal(t, 200, api.must(t, "GET", "/readyz", "", "").status)

	w.checkAll(tr.traffic)
}

// goroutineSummary returns the n most common goroutine stacks.
func goroutineSummary(n int) string {
	var b bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	groups := strings.Split(b.String(), "\n\n")
	sort.Slice(groups, func(i, j int) bool { return lead(groups[i]) > lead(groups[j]) })
	if len(groups) > n {
		groups = groups[:n]
	}
	return strings.Join(groups, "\n\n")
}

func lead(g string) int {
	var k int
	_, _ = fmt.Sscanf(g, "%d @", &k)
	return k
}

// serverGoroutines counts the goroutines of the HTTP server (fasthttp and
// httpapi frames), leaving out the harness' own (toxiproxy links, pools).
func serverGoroutines() int {
	var b bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	n := 0
	for _, g := range strings.Split(b.String(), "\n\n") {
		if strings.Contains(g, "valyala/fasthttp") || strings.Contains(g, "shelfline/inventory/httpapi") {
			n += lead(g)
		}
	}
	return n
}
