package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/relay"
)

// topicReader collects a topic's records, per key, in the order read.
type topicReader struct {
	mu   sync.Mutex
	keys map[string][]int64
	n    int
	err  error
}

func readTopic(t *testing.T, brokers []string) *topicReader {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(relay.DefaultTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	tr := &topicReader{keys: map[string][]int64{}}
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			tr.mu.Lock()
			fs.EachError(func(_ string, _ int32, err error) {
				if ctx.Err() == nil && tr.err == nil {
					tr.err = err
				}
			})
			fs.EachRecord(func(r *kgo.Record) {
				var ev engine.Event
				if err := json.Unmarshal(r.Value, &ev); err != nil || relay.Key(ev.Store, ev.SKU) != string(r.Key) {
					tr.err = fmt.Errorf("record %s: %v (event %s/%s)", r.Key, err, ev.Store, ev.SKU)
					return
				}
				tr.keys[string(r.Key)] = append(tr.keys[string(r.Key)], ev.Version)
				tr.n++
			})
			tr.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cl.Close()
	})
	return tr
}

func (tr *topicReader) count(t *testing.T) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	require.NoError(t, tr.err)
	return tr.n
}

// The real `inventory relay` SIGKILLed mid-stream and started again: every
// event reaches the topic, and each item's versions, counted at their first
// sighting, arrive 1..N in order.
func TestRelayProcessKilledMidStream(t *testing.T) {
	t.Parallel()
	env := processEnv(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, relay.DefaultTopic))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	env["INVENTORY_KAFKA_BROKERS"] = strings.Join(c.ListenAddrs(), ",")
	env["INVENTORY_DATABASE_URL"] = "off"
	ctx := t.Context()
	e, err := engine.New(engine.Config{Client: testsupport.RedisClient(t, 0), Prefix: env["INVENTORY_REDIS_PREFIX"], Partitions: 4})
	require.NoError(t, err)
	require.NoError(t, e.Init(ctx))
	var items []engine.ItemRef
	for s := range 3 {
		for k := range 4 {
			ref := engine.ItemRef{Store: fmt.Sprint("s", s), SKU: fmt.Sprint("sku", k)}
			items = append(items, ref)
			_, err := e.Set(ctx, engine.SetRequest{Store: ref.Store, SKU: ref.SKU, OnHand: 1000}, engine.Op{})
			require.NoError(t, err)
		}
	}
	const changes = 600
	total := len(items) + changes
	var (
		wmu     sync.Mutex
		written = len(items)
	)
	tr := readTopic(t, c.ListenAddrs())
	p1 := startProcess(t, env, "relay")
	p1.waitFor(60*time.Second, "the items' creations on the topic", func() bool { return tr.count(t) >= len(items) })

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for range changes {
			ref := items[rand.N(len(items))]
			if _, err := e.Adjust(context.Background(), engine.AdjustRequest{Store: ref.Store, SKU: ref.SKU, Delta: 1}, engine.Op{}); err != nil {
				t.Error(err)
				return
			}
			wmu.Lock()
			written++
			wmu.Unlock()
			time.Sleep(5 * time.Millisecond) // a stream that keeps flowing across the kill
		}
	}()
	p1.waitFor(60*time.Second, "100 records on the topic", func() bool { return tr.count(t) >= 100 })
	require.NoError(t, p1.cmd.Process.Kill())
	<-p1.done
	wmu.Lock()
	atKill := written
	wmu.Unlock()
	require.Less(t, tr.count(t), total, "killed mid-stream")
	require.Less(t, atKill, total, "killed while changes were still being written")

	p2 := startProcess(t, env, "relay")
	select {
	case <-writerDone:
	case <-time.After(60 * time.Second):
		t.Fatal("the writer did not finish")
	}
	p2.waitFor(60*time.Second, "every entry acknowledged by the relay group", func() bool {
		for p := range 4 {
			st, ok, err := e.GroupState(ctx, p, relay.DefaultGroup)
			require.NoError(t, err)
			if !ok || st.Unacked > 0 {
				return false
			}
		}
		return tr.count(t) >= total
	})
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, ref := range items {
		key := relay.Key(ref.Store, ref.SKU)
		it, err := e.GetItem(ctx, ref.Store, ref.SKU)
		require.NoError(t, err)
		var first []int64
		seen := map[int64]bool{}
		for _, v := range tr.keys[key] {
			if !seen[v] {
				seen[v] = true
				first = append(first, v)
			}
		}
		want := make([]int64, it.Version)
		for i := range want {
			want[i] = int64(i + 1)
		}
		require.Equal(t, want, first, "%s: every version, in order", key)
	}
	t.Logf("%d events, %d records on the topic (%d sent twice after the kill)", total, tr.n, tr.n-total)
}
