package httpapi

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRateLimiter(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	l := newRateLimiter(2, 3, func() time.Time { return now })
	for i := 0; i < 3; i++ {
		_, ok := l.allow("a")
		require.True(t, ok, "the burst")
	}
	wait, ok := l.allow("a")
	require.False(t, ok)
	require.Equal(t, 500*time.Millisecond, wait)
	_, ok = l.allow("b")
	require.True(t, ok, "per principal")
	now = now.Add(500 * time.Millisecond)
	_, ok = l.allow("a")
	require.True(t, ok, "refilled at the rate")
	now = now.Add(time.Hour)
	for i := 0; i < 3; i++ {
		_, ok = l.allow("a")
		require.True(t, ok)
	}
	_, ok = l.allow("a")
	require.False(t, ok, "never above the burst")
	_, ok = newRateLimiter(-1, 0, time.Now).allow("a")
	require.True(t, ok, "negative rate: no limit")
}

func TestShutdownIsHarmless(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := ts.openSSE(t, "/v1/events", tokReader, "")
	require.NoError(t, ts.s.Shutdown(ctx), "ends open feeds and drains")
	require.NoError(t, ts.s.Shutdown(ctx), "twice")
	select {
	case _, ok := <-c.events:
		require.False(t, ok, "the feed ended")
	case <-time.After(5 * time.Second):
		t.Fatal("feed still open after shutdown")
	}
	s, err := New(Config{Engine: ts.e, Keys: testKeys(t), Registry: nil})
	require.NoError(t, err)
	_ = s.Shutdown(ctx) // before serving: no panic, no hang
}
