package browser_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/httpapi"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

const tokAdmin = "admin-token"

// world is a real API server (over real Redis and a fresh ledger schema,
// with its persister running) on a loopback port, and a browser.
type world struct {
	t    *testing.T
	url  string
	e    *engine.Engine
	rdb  *redis.Client
	pool *pgxpool.Pool
	rec  *persist.Reconciler
	ctx  context.Context // the browser's tab
}

type reconcilerAdapter struct{ r *persist.Reconciler }

func (a reconcilerAdapter) Reconcile(ctx context.Context, mode string) (any, error) {
	m, err := persist.ParseMode(mode)
	if err != nil {
		return nil, err
	}
	return a.r.Reconcile(ctx, m)
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t}
	w.rdb = testsupport.RedisClient(t, 0)
	prefix := testsupport.IsolatedPrefix(t, w.rdb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := engine.New(engine.Config{Client: w.rdb, Prefix: prefix, Partitions: 4})
	require.NoError(t, err)
	require.NoError(t, e.Init(ctx))
	w.e = e
	_, w.pool = testsupport.LedgerSchema(t, testsupport.MaxConns(8))
	w.rec, err = persist.NewReconciler(e, w.pool, persist.ReconcilerConfig{})
	require.NoError(t, err)
	keys, err := httpapi.ParseKeys(tokAdmin + ":admin")
	require.NoError(t, err)
	ledger := persist.NewLedger(w.pool)
	cfg := httpapi.Config{Engine: e, Keys: keys, Ledger: ledger, LowStock: ledger, Reconciler: reconcilerAdapter{w.rec},
		Heartbeat: time.Second, EventPoll: 20 * time.Millisecond}
	cfg.Inbox = persist.NewInbox(e, w.pool)
	cfg.Operations = persist.NewOperations(e, w.pool, persist.OperationsConfig{})
	s, err := httpapi.New(cfg)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx, ln) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Errorf("server did not shut down")
		}
	})
	w.url = "http://" + ln.Addr().String()
	testsupport.StartPersister(t, e, w.pool, persist.PersisterConfig{Linger: -1})
	w.ctx = testsupport.Browser(t, 2*time.Minute)
	return w
}

// call sends one API request as admin and returns its status and body.
func (w *world) call(method, path string, body any) (int, map[string]any) {
	w.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(w.t, err)
		rd = bytes.NewReader(b)
	}
	rq, err := http.NewRequest(method, w.url+path, rd)
	require.NoError(w.t, err)
	rq.Header.Set("Authorization", "Bearer "+tokAdmin)
	if body != nil {
		rq.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(rq)
	require.NoError(w.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(w.t, err)
	var out map[string]any
	if len(b) > 0 {
		require.NoError(w.t, json.Unmarshal(b, &out), "%s %s: %s", method, path, b)
	}
	return res.StatusCode, out
}

// put sets an item, with a reorder point when rp >= 0.
func (w *world) put(store, sku string, onHand, rp int64) {
	w.t.Helper()
	body := map[string]any{"on_hand": onHand}
	if rp >= 0 {
		body["reorder_point"] = rp
	}
	st, b := w.call("PUT", "/v1/stores/"+store+"/items/"+sku, body)
	require.Contains(w.t, []int{200, 201}, st, "%v", b)
}

// caughtUp waits until the ledger holds every event Redis has.
func (w *world) caughtUp() {
	w.t.Helper()
	testsupport.WaitFor(w.t, 20*time.Second, "the ledger catches up", func() bool { return testsupport.LedgerCaughtUp(w.t, w.pool, w.e) })
}

// open navigates the tab to the dashboard with hash (the token is handed
// over in the hash, which the page moves to sessionStorage).
func (w *world) open(hash string) {
	w.t.Helper()
	require.NoError(w.t, chromedp.Do(w.ctx, chromedp.Navigate(w.url+"/#"+hash+"&token="+tokAdmin)))
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](w *world, expr string) T {
	w.t.Helper()
	v, err := chromedp.Run(w.ctx, chromedp.Evaluate[T](expr))
	require.NoError(w.t, err, "evaluate %s", expr)
	return v
}

// waitJS waits, up to d, until the expression is truthy in the page.
func (w *world) waitJS(d time.Duration, what, expr string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, d)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(10*time.Millisecond)))
	if err != nil {
		w.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
	}
	require.NoError(w.t, err, "waiting until %s (%s)", what, expr)
}

// cell is the JavaScript expression of the text of an item row's cell.
func cell(sku, col string) string {
	return fmt.Sprintf(`(document.querySelector('tr[data-sku=%q] td[data-col=%q]')?.textContent ?? null)`, sku, col)
}

// screenshot writes the page as name.png into the test's artifact
// directory and, with INVENTORY_UPDATE_SCREENSHOTS=1, into docs/screenshots.
func (w *world) screenshot(name string) string {
	w.t.Helper()
	png, err := chromedp.Run(w.ctx, chromedp.FullScreenshot(100))
	require.NoError(w.t, err)
	path := filepath.Join(w.t.ArtifactDir(), name+".png")
	require.NoError(w.t, os.WriteFile(path, png, 0o644))
	w.t.Logf("screenshot %s", path)
	if os.Getenv("INVENTORY_UPDATE_SCREENSHOTS") == "1" {
		dir := filepath.Join("..", "..", "docs", "screenshots")
		require.NoError(w.t, os.MkdirAll(dir, 0o755))
		require.NoError(w.t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
	}
	return path
}
