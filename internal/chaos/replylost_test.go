package chaos

import (
	"context"
	"errors"
	"math/rand"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// lossyClient makes the engine's Redis client give up on a reply quickly
// and leaves retrying to the engine and its caller.
func lossyClient(o *redis.Options) {
	o.ReadTimeout = 250 * time.Millisecond
	o.WriteTimeout = 250 * time.Millisecond
	o.MaxRetries = -1
}

// Scenario 1: Redis runs the script but its reply is lost (a timeout toxic
// swallows everything Redis sends). The client's retry with the same key
// applies nothing more and returns the first result.
func TestReplyLostRetryAppliesOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOpts{client: lossyClient, engine: func(c *engine.Config) { c.GroupTimeout = 2 * time.Second }})
	ctx := context.Background()
	r, err := w.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 10}, engine.Op{})
	require.NoError(t, err)
	v0 := r.Item.Version

	// The reply of a keyed checkout's script is lost, every time the engine
	// retries: the script runs in Redis, its caller hears nothing. (The
	// key's claim, a command of its own before the script, goes through.)
	lost := &lostScriptReplies{}
	lost.armed.Store(true)
	w.rdb.AddHook(lost)
	key := "k-" + testsupport.RandomHex(8)
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	_, err = w.e.Checkout(cctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 2}}}, op(key))
	cancel()
	require.Positive(t, lost.swallowed.Load(), "a script reply was swallowed")
	require.Error(t, err, "no reply came back")
	require.True(t, engine.IsUnavailable(err) || errors.Is(err, context.DeadlineExceeded), "a lost reply is unavailability, not a domain error: %v", err)
	// The script ran nonetheless.
	testsupport.WaitFor(t, 5*time.Second, "the sale applied in Redis", func() bool {
		it, err := w.ins.GetItem(ctx, "s1", "sofa")
		return err == nil && it.Version == v0+1
	})
	// Meanwhile someone else buys one.
	lost.armed.Store(false)
	_, err = w.e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}, engine.Op{})
	require.NoError(t, err)

	// The retry replays the first result and changes nothing.
	res, err := w.e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 2}}}, op(key))
	require.NoError(t, err)
	require.True(t, res.Replayed, "the retry is a replay")
	require.Len(t, res.Items, 1)
	require.Equal(t, int64(8), res.Items[0].OnHand, "the first result: 10 - 2")
	require.Equal(t, v0+1, res.Items[0].Version, "the first result's version")
	it, err := w.ins.GetItem(ctx, "s1", "sofa")
	require.NoError(t, err)
	require.Equal(t, int64(7), it.OnHand, "10 - 2 - 1: the retried sale applied once")
	require.Equal(t, v0+2, it.Version)
	msgs, err := w.direct.XRange(ctx, w.ins.StreamKey(w.ins.Partition("s1")), "-", "+").Result()
	require.NoError(t, err)
	n := 0
	for _, m := range msgs {
		ev, err := engine.ParseEvent(m.ID, m.Values)
		require.NoError(t, err)
		if ev.IdempotencyKey == key {
			n++
		}
	}
	require.Equal(t, 1, n, "one event carries the key")
}

// Scenario 1 under load: replies are lost in bursts (swallowed, or the
// connection cut as the reply comes back) while clients sell,
// restock and reserve with keys and retry; every keyed request applies at
// most once (exactly once when acknowledged) and the history is
// linearizable.
func TestReplyLostUnderLoad(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOpts{client: lossyClient, engine: func(c *engine.Config) { c.GroupTimeout = time.Second }})
	_, _ = w.startPersister(w.dpool, persist.PersisterConfig{})
	tr := newTraffic(t, w.e, trafficCfg{stores: []string{"s1", "s2"}, skus: []string{"sofa", "lamp"},
		workers: 8, ops: pick(600, 20000), dur: pick(5*time.Second, 60*time.Second), attempt: 600 * time.Millisecond})
	stop := background(t, "fault loop", func(ctx context.Context) error {
		rng := rand.New(rand.NewSource(1))
		for i := 0; i < 10000 && ctx.Err() == nil; i++ { // bounded; stops with the traffic
			sleepCtx(ctx, time.Duration(200+rng.Intn(300))*time.Millisecond)
			if rng.Intn(2) == 0 {
				// Replies are swallowed; connections hang until clients give up.
				w.rproxy.Add("lost", "timeout", "downstream", `{"timeout":0}`)
			} else {
				// The connection is cut as the reply comes back.
				w.rproxy.Add("lost", "reset_peer", "downstream", `{"timeout":0}`)
			}
			sleepCtx(ctx, time.Duration(300+rng.Intn(600))*time.Millisecond)
			w.rproxy.Remove("lost")
		}
		return nil
	})
	tr.run(context.Background())
	require.NoError(t, stop())
	require.Positive(t, tr.retries.Load(), "the faults forced retries")
	w.checkAll(tr)
}

// sleepCtx sleeps d or until ctx ends: the pacing of a fault loop.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// lostScriptReplies is a go-redis hook that, while armed, lets every script
// call run in Redis and then reports a timeout instead of its reply.
type lostScriptReplies struct {
	armed     atomic.Bool
	swallowed atomic.Int64
}

func (h *lostScriptReplies) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *lostScriptReplies) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if name := cmd.Name(); h.armed.Load() && (name == "evalsha" || name == "eval") {
			h.swallowed.Add(1)
			e := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
			cmd.SetErr(e)
			return e
		}
		return err
	}
}

func (h *lostScriptReplies) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
