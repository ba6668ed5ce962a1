package chaos

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/internal/testsupport"
)

// serveProc is `inventory serve` running as a child process.
type serveProc struct {
	t    testing.TB
	bin  string
	env  []string
	addr string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	api  *apiServer
}

func (w *world) startServe(bin string) *serveProc {
	w.t.Helper()
	addr := testsupport.FreeAddr(w.t)
	sp := &serveProc{t: w.t, bin: bin, addr: addr, log: filepath.Join(w.t.TempDir(), "serve.log"),
		api: &apiServer{url: "http://" + addr},
		env: []string{
			"INVENTORY_ADDR=" + addr,
			"INVENTORY_ADMIN_ADDR=127.0.0.1:0", // a free port: restarts and parallel tests never collide
			"INVENTORY_REDIS_URL=redis://" + w.redis.Addr() + "/0",
			"INVENTORY_REDIS_PREFIX=" + w.prefix,
			"INVENTORY_PARTITIONS=" + itoa(w.parts),
			"INVENTORY_DATABASE_URL=" + w.databaseURLFor(""),
			"INVENTORY_API_KEYS=" + tokAdmin + ":admin," + tokS1 + ":store:s1," + tokS2 + ":store:s2",
			"INVENTORY_LOG_LEVEL=warn",
		}}
	sp.start()
	w.t.Cleanup(sp.kill)
	return sp
}

func (sp *serveProc) start() {
	sp.t.Helper()
	f, err := os.OpenFile(sp.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(sp.t, err)
	defer f.Close()
	cmd := exec.Command(sp.bin, "serve")
	cmd.Env = append(os.Environ(), sp.env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(sp.t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	sp.cmd, sp.done = cmd, done
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := sp.api.do("GET", "/readyz", "", "")
		if err == nil && r.status == 200 {
			return
		}
		select {
		case <-done:
			b, _ := os.ReadFile(sp.log)
			sp.t.Fatalf("inventory serve exited at start: %s", b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(sp.log)
			sp.t.Fatalf("inventory serve not ready within 30s: %v %+v\n%s", err, r, b)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

// kill SIGKILLs the process and waits for it. Harmless twice.
func (sp *serveProc) kill() {
	if sp.cmd == nil || sp.cmd.Process == nil {
		return
	}
	_ = sp.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-sp.done:
	case <-time.After(10 * time.Second):
		sp.t.Errorf("inventory serve did not exit after SIGKILL")
	}
}

func itoa(n int) string { return formatInt(int64(n)) }

// Scenario 5: the API process (inventory serve: API, persister, rebuilder,
// sweeper in one) is SIGKILLed mid-sale, repeatedly, and restarted on the
// same address while HTTP clients keep selling and retrying with their
// Idempotency-Keys. No acknowledged sale is missing from the ledger, none
// applied twice, no 5xx but 503 with Retry-After, and the history of the
// items is linearizable.
func TestAPIKilledMidSale(t *testing.T) {
	t.Parallel()
	bin := testsupport.BuildBinary(t)
	w := newWorld(t, worldOpts{})
	ctx := context.Background()
	sp := w.startServe(bin)
	var cur atomic.Pointer[apiServer]
	cur.Store(sp.api)
	tr := &httpTraffic{traffic: newTraffic(t, w.ins, trafficCfg{stores: []string{"s1", "s2"}, skus: []string{"sofa", "lamp"},
		initial: 100000, workers: 6, ops: pick(2000, 100000), dur: pick(7*time.Second, 90*time.Second), giveUp: 8 * time.Second}),
		api: cur.Load, token: tokAdmin}
	done := make(chan struct{})
	go func() { tr.run(ctx); close(done) }()
	kills, resumed := 0, 0
	end := time.Now().Add(pick(4*time.Second, 80*time.Second))
	for time.Now().Before(end) {
		time.Sleep(pick(1500*time.Millisecond, 5*time.Second)) // traffic between crashes
		okBefore := tr.ok.Load()
		sp.kill()
		kills++
		r, err := sp.api.do("GET", "/readyz", "", "")
		require.Error(t, err, "readiness: the process is gone (%+v)", r)
		sp.start() // waits for /readyz 200
		// Sales resume after the restart, unless the traffic's time ran out
		// meanwhile (a slow machine restarts slowly).
		ended := false
		testsupport.WaitFor(t, 10*time.Second, "sales resume after the restart", func() bool {
			select {
			case <-done:
				ended = true
				return true
			default:
			}
			return tr.ok.Load() > okBefore
		})
		if ended {
			break
		}
		resumed++
	}
	<-done
	t.Logf("inventory serve SIGKILLed %d times mid-sale, sales resumed after %d restarts", kills, resumed)
	require.Positive(t, kills)
	require.Positive(t, resumed, "sales resumed after a restart at least once")
	w.checkAll(tr.traffic)
}
