package webhook_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/webhook"
)

// TestWithoutWebhooksTheStreamsAreSkipped: while no webhook exists the
// workers read no entry (their group moves past the stream's end, its lag
// exact, so trimming does not wait for it), and the first webhook made gets
// every event after its creation returned.
func TestWithoutWebhooksTheStreamsAreSkipped(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	d, _ := v.start(t, webhook.Config{})
	const n = 20
	for i := range n {
		v.set(t, "s1", "lamp", int64(i+1), nil)
	}
	p := v.e.Partition("s1")
	testsupport.WaitFor(t, 20*time.Second, "the group past every entry", func() bool {
		st, ok, err := v.e.GroupState(t.Context(), p, webhook.DefaultGroup)
		require.NoError(t, err)
		return ok && st.Unacked == 0
	})
	require.Zero(t, d.Stats().Events, "no entry was read")

	r := newReceiver(t, secret, nil)
	v.subscribe(t, r.srv.URL, "stock_changed")
	v.set(t, "s1", "lamp", 100, nil)
	testsupport.WaitFor(t, 20*time.Second, "the delivery", func() bool { return len(r.accepted()) >= 1 })
	time.Sleep(300 * time.Millisecond)
	require.Len(t, r.accepted(), 1, "only the event after the webhook was made")
	require.Equal(t, int64(n+1), r.accepted()[0].payload.Event.Version)
	require.Equal(t, int64(100), r.accepted()[0].payload.Item.OnHand)
}
