package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

// TestProblemForUnavailable: the engine's "retry later" errors are 503
// with Retry-After and a detail that says why, never a 500.
func TestProblemForUnavailable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err    error
		detail string
	}{
		{fmt.Errorf("checkout s1: %w: OOM command not allowed", engine.ErrRedisFull), "Redis is out of memory"},
		{fmt.Errorf("set s1/lamp: %w", engine.ErrBackpressure), "the ledger is behind"},
		{fmt.Errorf("get: %w", engine.ErrPartitionNotReady), "being rebuilt"},
	} {
		p := problemFor(tc.err)
		require.Equal(t, http.StatusServiceUnavailable, p.Status, tc.err)
		require.Positive(t, p.RetryAfter)
		require.Contains(t, p.Detail, tc.detail)
	}
	require.Equal(t, http.StatusInternalServerError, problemFor(errors.New("something else")).Status)
}
