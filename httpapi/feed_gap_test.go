package httpapi

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSSEGapAfterTrim: a client resuming from a position whose following
// events were already trimmed is told so (event: gap), instead of silently
// missing them; a client resuming within the retained events is not.
func TestSSEGapAfterTrim(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.openSSE(t, "/v1/events", tokReader, "")
	old := c.lastID
	c.res.Body.Close()
	ts.put("s1", "x", 1)
	ts.put("s1", "x", 2)

	sawGap := func(lastID string) bool {
		rq, err := http.NewRequest("GET", ts.url+"/v1/events", nil)
		require.NoError(t, err)
		rq.Header.Set("Authorization", "Bearer "+tokReader)
		rq.Header.Set("Last-Event-ID", lastID)
		res, err := http.DefaultClient.Do(rq)
		require.NoError(t, err)
		defer res.Body.Close()
		checkHTTP(t, rq, nil, res, nil, true)
		require.Equal(t, 200, res.StatusCode)
		lines := make(chan string, 64)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(res.Body)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		deadline := time.After(3 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					return false
				}
				if l == "event: gap" {
					checkFeedMessage(t, "gap", []byte(strings.TrimPrefix(<-lines, "data: ")))
					return true
				}
				if strings.HasPrefix(l, "data: ") && !strings.Contains(l, "partitions") {
					checkFeedMessage(t, "", []byte(l[len("data: "):]))
					return false // the first event came without a gap
				}
			case <-deadline:
				return false
			}
		}
	}
	require.False(t, sawGap(old), "resuming within the retained events has no gap")

	// The persister trims behind itself; here the stream is trimmed by hand.
	p := ts.e.Partition("s1")
	require.NoError(t, ts.rdb.XTrimMaxLen(context.Background(), ts.e.StreamKey(p), 0).Err())
	ts.put("s1", "x", 3)
	require.True(t, sawGap(old), "resuming past trimmed events says so")
}
