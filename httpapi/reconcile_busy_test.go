package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/shelfline/inventory/persist"
)

// busyReconciler answers as a reconciler does while another run holds the
// lock.
type busyReconciler struct{}

func (busyReconciler) Reconcile(context.Context, string) (any, error) {
	return nil, fmt.Errorf("reconcile: %w", persist.ErrReconcileInProgress)
}

// TestReconcileInProgressIsUnavailable: a run asked for while another runs
// is 503 with Retry-After, not a server error.
func TestReconcileInProgressIsUnavailable(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.Reconciler = busyReconciler{} })
	p := requireProblem(t, ts.req("POST", "/v1/admin/reconcile?mode=check", tokAdmin, ""), http.StatusServiceUnavailable)
	if p["detail"] == "" {
		t.Fatal("no detail")
	}
}
