package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// Scenario 8: poison entries (unparseable, or breaking an invariant) land
// in the partitions' streams mid-traffic. Each is moved to the partition's
// dead-letter stream and counted; the partition keeps flowing and the
// ledger catches up with every real event.
func TestPoisonEventDeadLettered(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOpts{})
	ctx := context.Background()
	p, _ := w.startPersister(w.dpool, persist.PersisterConfig{BatchSize: 50})
	tr := newTraffic(t, w.e, trafficCfg{stores: []string{"s1", "s2"}, skus: []string{"sofa", "lamp"},
		workers: 4, ops: pick(500, 20000), dur: pick(4*time.Second, 60*time.Second)})
	poisons := []map[string]any{
		{"garbage": "x"},
		{"s": "s1", "k": "sofa", "v": "not-a-number", "t": "SALE", "dh": "-1", "dr": "0", "oh": "1", "rs": "0", "rp": "-1", "mpc": "-1", "ts": "1"},
		{"s": "s1", "k": "sofa", "v": "3", "t": "SALE", "dh": "-1", "dr": "0", "oh": "1", "rs": "5", "rp": "-1", "mpc": "-1", "ts": "1"}, // reserved > on_hand
		{"s": "../etc", "k": "sofa", "v": "3", "t": "SALE", "dh": "-1", "dr": "0", "oh": "1", "rs": "0", "rp": "-1", "mpc": "-1", "ts": "1"},
		{"s": "s1", "k": "sofa", "v": "3", "t": "STEAL", "dh": "-1", "dr": "0", "oh": "1", "rs": "0", "rp": "-1", "mpc": "-1", "ts": "1"},
	}
	injected := 0
	stop := background(t, "poison loop", func(ctx context.Context) error {
		for i := 0; ctx.Err() == nil && i < 200; i++ {
			sleepCtx(ctx, 100*time.Millisecond)
			part := i % w.parts
			if err := w.direct.XAdd(context.Background(), &redis.XAddArgs{Stream: w.ins.StreamKey(part), Values: poisons[i%len(poisons)]}).Err(); err != nil {
				return err
			}
			injected++
		}
		return nil
	})
	tr.run(ctx)
	require.NoError(t, stop())
	require.Greater(t, injected, 5)
	testsupport.WaitFor(t, 20*time.Second, "every poison entry dead-lettered", func() bool { return p.Stats().DeadLetters == int64(injected) })
	var dl int64
	for part := 0; part < w.parts; part++ {
		n, err := w.direct.XLen(ctx, persist.DeadLetterKey(w.ins, part)).Result()
		require.NoError(t, err)
		dl += n
	}
	require.Equal(t, int64(injected), dl, "each poison entry is in a dead-letter stream, once")
	t.Logf("%d poison entries dead-lettered", injected)
	w.checkAll(tr)
}
