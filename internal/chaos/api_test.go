package chaos

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/httpapi"
	"github.com/shelfline/inventory/persist"
)

// Tokens of the in-process API servers.
const (
	tokAdmin = "chaos-admin"
	tokS1    = "chaos-s1"
	tokS2    = "chaos-s2"
)

// apiServer is the HTTP API in-process on a loopback port, over the
// world's engine.
type apiServer struct {
	url string
	s   *httpapi.Server
}

func persisterStats(p *persist.Persister) func() httpapi.PersisterStats {
	return func() httpapi.PersisterStats {
		st := p.Stats()
		out := httpapi.PersisterStats{Persisted: st.EventsPersisted, Batches: st.Batches, DeadLetters: st.DeadLetters,
			Errors: st.WriteErrors, LastBatchSize: st.LastBatchSize}
		for _, n := range st.Lag {
			out.Lag += n
		}
		return out
	}
}

func (w *world) startAPI(tweak func(*httpapi.Config)) *apiServer {
	w.t.Helper()
	keys, err := httpapi.ParseKeys(tokAdmin + ":admin," + tokS1 + ":store:s1," + tokS2 + ":store:s2")
	require.NoError(w.t, err)
	cfg := httpapi.Config{Engine: w.e, Keys: keys, Ledger: persist.NewLedger(w.pool)}
	if tweak != nil {
		tweak(&cfg)
	}
	s, err := httpapi.New(cfg)
	require.NoError(w.t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(w.t, err)
	background(w.t, "http server", func(ctx context.Context) error { return s.Serve(ctx, ln) })
	return &apiServer{url: "http://" + ln.Addr().String(), s: s}
}

// httpResp is a finished response.
type httpResp struct {
	status int
	header http.Header
	body   string
}

var apiClient = &http.Client{Timeout: 10 * time.Second}

func (a *apiServer) do(method, path, token, body string, hdr ...string) (*httpResp, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	rq, err := http.NewRequest(method, a.url+path, rd)
	if err != nil {
		return nil, err
	}
	if token != "" {
		rq.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		rq.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		rq.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := apiClient.Do(rq)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	return &httpResp{status: res.StatusCode, header: res.Header, body: string(b)}, nil
}

func (a *apiServer) must(t testing.TB, method, path, token, body string, hdr ...string) *httpResp {
	t.Helper()
	r, err := a.do(method, path, token, body, hdr...)
	require.NoError(t, err)
	return r
}

// metric returns the value of an unlabelled metric from /metrics.
func (a *apiServer) metric(t testing.TB, name string) (float64, bool) {
	t.Helper()
	r := a.must(t, "GET", "/metrics", "", "")
	for _, line := range strings.Split(r.body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			_, err := fmtSscan(v, &f)
			return f, err == nil
		}
	}
	return 0, false
}
