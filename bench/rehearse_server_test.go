package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/internal/testsupport"
)

// TestRehearsalFullMixOnTheServer rehearses every operation of a mix
// against the product's own HTTP server (in-process, on real Redis, its
// persister writing a real ledger): checkouts and holds of a few customers
// with a purchase limit of 2, so the limit refuses some; reads,
// availability queries, restocks and bulk imports; Idempotency-Keys on
// every write. The checker must find the stock equal to the run's books,
// every limit held, every expiring hold released and the ledger drained
// and gap-free.
func TestRehearsalFullMixOnTheServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cfg := Config{Scenario: ScenarioMixed, Targets: []string{TargetServer}, Workers: 64, Partitions: 4,
		RedisURL: testsupport.RedisURL(), DatabaseURL: testsupport.DatabaseURL(), OutDir: t.TempDir()}.withDefaults()
	st, err := newServerTarget(ctx, cfg, randomHex(4))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close(context.Background())) })
	p, err := ParsePlan([]byte(`
name: full-mix
start_rate: 60
stages: [{duration: 2s, rate: 60}]
mix: {checkout: 40, reserve: 25, read: 10, availability: 10, adjust: 10, bulk: 5}
reservation: {ttl: 1s, commit: 0.4, release: 0.3}
catalog: {stores: 2, skus: 8, on_hand: 40, lines: 2, bulk_lines: 5}
hot: {zipf: 1.5}
customers: {count: 6, limit: 2}
client: {idempotency: true}
thresholds: ["errors==0", "oversold==0", "violations==0"]
`))
	require.NoError(t, err)
	var progress bytes.Buffer
	r, err := Rehearse(ctx, RehearsalConfig{Plan: p, URL: st.base, Token: strings.TrimPrefix(st.auth, "Bearer "),
		LedgerURL: cfg.DatabaseURL, LedgerSchema: st.eng.ledger.schema, OutDir: t.TempDir(), Progress: &progress, StartDelay: 200 * time.Millisecond})
	require.NoError(t, err)
	var sum bytes.Buffer
	require.NoError(t, WriteRehearsalSummary(&sum, r))
	t.Log("\n" + progress.String() + "\n" + sum.String())
	require.Equal(t, int64(120), r.Iterations)
	for _, op := range []string{OpCheckout, OpReserve, OpRead, OpAvailability, OpAdjust, OpBulk} {
		require.Positive(t, r.Ops[op].Count, op)
	}
	require.Positive(t, r.Ops[OpCheckout].Kinds[kindPurchaseLimit]+r.Ops[OpReserve].Kinds[kindPurchaseLimit], "six customers with a limit of 2 meet it")
	names := map[string]bool{}
	for _, c := range r.Checks {
		require.True(t, c.Passed, "%s: %s", c.Name, c.Detail)
		names[c.Name] = true
	}
	require.True(t, names["ledger"] && names["purchase limits held"] && names["stock equals the books"], "%v", names)
	require.True(t, r.Passed, "%v %+v", r.Violations, r.Thresholds)
	require.NotEmpty(t, r.Metrics)
}

// TestRehearsalTransfersOnTheServer rehearses transfers between the run's
// stores (created, received, cancelled) among checkouts against the
// product's server: stock equals the books (units leave the source at once,
// join the destination on receipt, come back on cancel), and a threshold on
// one operation's errors within one stage holds.
func TestRehearsalTransfersOnTheServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cfg := Config{Scenario: ScenarioMixed, Targets: []string{TargetServer}, Workers: 64, Partitions: 4,
		RedisURL: testsupport.RedisURL(), DatabaseURL: testsupport.DatabaseURL(), OutDir: t.TempDir()}.withDefaults()
	st, err := newServerTarget(ctx, cfg, randomHex(4))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close(context.Background())) })
	p, err := ParsePlan([]byte(`
name: transfers
start_rate: 60
stages: [{name: peak, duration: 2s, rate: 60}]
mix: {checkout: 2, transfer: 4, receive: 3, cancel: 3}
catalog: {stores: 3, skus: 4, on_hand: 50, lines: 1}
client: {idempotency: true}
thresholds: ["errors{op=transfer,stage=peak}<1%", "receive.errors==0", "errors==0", "oversold==0", "violations==0"]
`))
	require.NoError(t, err)
	var progress bytes.Buffer
	r, err := Rehearse(ctx, RehearsalConfig{Plan: p, URL: st.base, Token: strings.TrimPrefix(st.auth, "Bearer "),
		LedgerURL: cfg.DatabaseURL, LedgerSchema: st.eng.ledger.schema, OutDir: t.TempDir(), Progress: &progress, StartDelay: 200 * time.Millisecond})
	require.NoError(t, err)
	var sum bytes.Buffer
	require.NoError(t, WriteRehearsalSummary(&sum, r))
	t.Log("\n" + progress.String() + "\n" + sum.String())
	require.Equal(t, int64(120), r.Iterations)
	for _, op := range []string{OpTransfer, OpReceive, OpCancel} {
		require.Positive(t, r.Ops[op].OK, op)
	}
	for _, c := range r.Checks {
		require.True(t, c.Passed, "%s: %s", c.Name, c.Detail)
	}
	require.True(t, r.Passed, "%v %+v", r.Violations, r.Thresholds)
	require.True(t, r.Thresholds[0].Held, "%+v", r.Thresholds[0])
}
