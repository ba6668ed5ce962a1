package scaleout

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/redistest"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

const partitions = 16

// quietRedis drops go-redis' own log lines (dial failures to a killed
// master, hundreds of them during a failover).
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...interface{}) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quietRedis{})
	code := m.Run()
	redistest.StopShared()
	testsupport.RemoveBinary()
	os.Exit(code)
}

// deployment is one inventory deployment on a Redis Cluster: its own key
// prefix and PostgreSQL schema, an in-process engine and a pool on the
// schema.
type deployment struct {
	t      testing.TB
	cl     *redistest.Cluster
	rdb    *redis.ClusterClient
	e      *engine.Engine
	prefix string
	schema string
	dbURL  string // with search_path=<schema>
	pool   *pgxpool.Pool
}

// newDeployment makes a schema, applies the migrations with `inventory
// migrate`, and makes every partition ready the way serve does with a
// ledger: a Rebuilder, which on an empty ledger only sets the markers.
func newDeployment(t testing.TB, cl *redistest.Cluster) *deployment {
	t.Helper()
	testsupport.BuildBinary(t) // before the deadline of the start
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d := &deployment{t: t, cl: cl, prefix: testsupport.Prefix(t), schema: testsupport.Schema(t)}
	d.dbURL = testsupport.SchemaURL(t, d.schema, "")

	out, err := d.command(ctx, "migrate").CombinedOutput()
	require.NoError(t, err, "inventory migrate: %s", out)

	d.pool = testsupport.Pool(t, d.schema)
	var n int
	require.NoError(t, d.pool.QueryRow(ctx, `SELECT count(*) FROM inventory_events`).Scan(&n), "migrated into %s", d.schema)

	d.rdb = cl.NewClient(&redis.ClusterOptions{PoolSize: 64, ClusterStateReloadInterval: time.Second})
	t.Cleanup(func() { d.rdb.Close() })
	d.e, err = engine.New(engine.Config{Client: d.rdb, Prefix: d.prefix, Partitions: partitions})
	require.NoError(t, err)
	require.NoError(t, d.e.LoadScripts(ctx))
	rb, err := persist.NewRebuilder(d.e, d.pool, persist.RebuilderConfig{})
	require.NoError(t, err)
	for p := 0; p < partitions; p++ {
		require.NoError(t, rb.RebuildPartition(ctx, p))
		ready, err := d.e.PartitionReady(ctx, p)
		require.NoError(t, err)
		require.True(t, ready, "partition %d ready", p)
	}
	return d
}

// env is the environment of the deployment's inventory processes.
func (d *deployment) env() []string {
	return append(os.Environ(),
		"INVENTORY_REDIS_CLUSTER_ADDRS="+strings.Join(d.cl.Addrs(), ","),
		"INVENTORY_REDIS_PREFIX="+d.prefix,
		"INVENTORY_PARTITIONS="+fmt.Sprint(partitions),
		"INVENTORY_DATABASE_URL="+d.dbURL,
		"INVENTORY_LOG_LEVEL=info",
		"INVENTORY_ADMIN_ADDR=127.0.0.1:0", // each process on a free port of its own
	)
}

func (d *deployment) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, testsupport.BuildBinary(d.t), args...)
	cmd.Env = d.env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// proc is a running inventory process.
type proc struct {
	name    string
	cmd     *exec.Cmd
	out     *lockedBuffer
	done    chan struct{}
	waitErr error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start starts `inventory args...`; it is SIGKILLed when the test ends (and
// by Pdeathsig if the test binary dies), and its output is logged when the
// test fails.
func (d *deployment) start(name string, args ...string) *proc {
	d.t.Helper()
	p := &proc{name: name, cmd: d.command(context.Background(), args...), out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	require.NoError(d.t, p.cmd.Start())
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	d.t.Cleanup(func() {
		p.kill()
		if d.t.Failed() {
			d.t.Logf("--- %s output (last 3000 bytes) ---\n%s", name, tail(p.out.String(), 3000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// kill SIGKILLs the process and waits for it. Harmless twice.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// storesOnEveryMaster returns perMaster store names for each master, named
// prefix<i>-<j>.
func (d *deployment) storesOnEveryMaster(perMaster int) (stores []string, masterOf map[string]string) {
	d.t.Helper()
	ctx := context.Background()
	ms, err := d.cl.Masters(ctx)
	require.NoError(d.t, err)
	masterOf = map[string]string{}
	count := map[string]int{}
	for i := 0; i < 10000 && len(stores) < perMaster*len(ms); i++ {
		s := fmt.Sprintf("st%d", i)
		slot, err := d.rdb.ClusterKeySlot(ctx, d.e.StreamKey(d.e.Partition(s))).Result()
		require.NoError(d.t, err)
		m, err := d.cl.MasterForSlot(ctx, int(slot))
		require.NoError(d.t, err)
		if count[m.Addr] < perMaster {
			count[m.Addr]++
			stores = append(stores, s)
			masterOf[s] = m.Addr
		}
	}
	require.Len(d.t, stores, perMaster*len(ms))
	return stores, masterOf
}

// groupState sums, over every partition's stream, the entries pending in
// the persister group and the entries not yet delivered to it (lag), and
// the entries pending per consumer.
func (d *deployment) groupState(ctx context.Context) (pending, lag int64, perConsumer map[string]int64, err error) {
	perConsumer = map[string]int64{}
	for p := 0; p < partitions; p++ {
		key := d.e.StreamKey(p)
		n, err := d.rdb.Exists(ctx, key).Result()
		if err != nil {
			return 0, 0, nil, err
		}
		if n == 0 {
			continue
		}
		groups, err := d.rdb.XInfoGroups(ctx, key).Result()
		if err != nil {
			return 0, 0, nil, err
		}
		found := false
		for _, g := range groups {
			if g.Name != "persister" {
				continue
			}
			found = true
			pending += g.Pending
			if g.Lag < 0 {
				return 0, 0, nil, fmt.Errorf("partition %d: group lag unknown", p)
			}
			lag += g.Lag
		}
		if !found {
			xl, err := d.rdb.XLen(ctx, key).Result()
			if err != nil {
				return 0, 0, nil, err
			}
			lag += xl
			continue
		}
		cs, err := d.rdb.XInfoConsumers(ctx, key, "persister").Result()
		if err != nil {
			return 0, 0, nil, err
		}
		for _, c := range cs {
			perConsumer[c.Name] += c.Pending
		}
	}
	return pending, lag, perConsumer, nil
}

// waitDrained waits until every stream entry is delivered to the
// persister group and acknowledged.
func (d *deployment) waitDrained(timeout time.Duration) {
	d.t.Helper()
	var pending, lag int64
	var err error
	ok := testsupport.Poll(timeout, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		pending, lag, _, err = d.groupState(ctx)
		return err == nil && pending == 0 && lag == 0
	})
	require.True(d.t, ok, "streams drained within %s: %d pending, %d undelivered, last error %v", timeout, pending, lag, err)
}

func (d *deployment) count(q string, args ...any) int64 {
	d.t.Helper()
	return testsupport.Count(d.t, d.pool, q, args...)
}
