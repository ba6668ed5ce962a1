package chaos

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/persist"
)

func (w *world) childEnv(consumer, point string, at int) []string {
	return []string{"CHAOS_REDIS=" + w.redis.Addr(), "CHAOS_PREFIX=" + w.prefix, "CHAOS_PARTS=" + strconv.Itoa(w.parts),
		"CHAOS_DB=" + w.databaseURLFor(""), "CHAOS_CONSUMER=" + consumer, "CHAOS_HOOK=" + point, "CHAOS_HOOK_AT=" + strconv.Itoa(at)}
}

// inLedger counts how many of the events ("store/sku@version") the ledger
// holds.
func (w *world) inLedger(evs []string) int {
	w.t.Helper()
	n := 0
	for _, e := range evs {
		item, v, _ := strings.Cut(e, "@")
		store, sku, _ := strings.Cut(item, "/")
		n += int(w.count(`SELECT count(*) FROM inventory_events WHERE store_id = $1 AND sku = $2 AND version = $3`, store, sku, v))
	}
	return n
}

// Scenario 6: the persister process is SIGKILLed mid-batch, once inside
// the transaction just before COMMIT and once after COMMIT before XACK,
// while traffic flows. The first batch is rolled back and written again by
// the restarted worker; the second is re-delivered to another worker, which
// finds its rows already there. The ledger ends exactly-once: versions
// 1..N, no duplicate, sums equal the state.
func TestPersisterKilledMidBatch(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOpts{})
	ctx := context.Background()
	tr := newTraffic(t, w.e, trafficCfg{stores: []string{"s1", "s2", "s3"}, skus: []string{"sofa", "lamp"}, initial: 100000,
		workers: 4, ops: pick(3000, 100000), dur: pick(6*time.Second, 60*time.Second)})
	done := make(chan struct{})
	go func() { tr.run(ctx); close(done) }()

	rounds := pick(1, 5)
	for r := 0; r < rounds; r++ {
		// Killed inside the transaction, just before COMMIT.
		victim := "victim-" + strconv.Itoa(r)
		c := startChild(t, "persister", w.childEnv(victim, "before", 3)...)
		var hl hookLine
		require.NoError(t, json.Unmarshal([]byte(c.expect("HOOK ", 30*time.Second)), &hl))
		require.NotEmpty(t, hl.Events)
		// A batch may hold re-delivered entries of an earlier victim,
		// already in the ledger: the killed transaction must add nothing.
		already := w.inLedger(hl.Events)
		c.kill()
		require.Equal(t, already, w.inLedger(hl.Events), "killed before COMMIT: nothing of the batch reached the ledger")

		// The same worker restarts, re-reads its pending entries, and is
		// killed after COMMIT, before XACK.
		c = startChild(t, "persister", w.childEnv(victim, "after", 1)...)
		require.NoError(t, json.Unmarshal([]byte(c.expect("HOOK ", 30*time.Second)), &hl))
		c.kill()
		require.Equal(t, len(hl.Events), w.inLedger(hl.Events), "killed after COMMIT: the whole batch is in the ledger")
		t.Logf("round %d: killed before COMMIT and after COMMIT (%d events left pending)", r, len(hl.Events))
	}
	// Another worker takes over the dead one's pending entries.
	p, _ := w.startPersister(w.dpool, persist.PersisterConfig{Consumer: "survivor"})
	<-done
	w.checkAll(tr)
	require.Positive(t, p.Stats().Claimed, "the survivor claimed the dead worker's entries")
}
