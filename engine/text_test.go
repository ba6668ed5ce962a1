package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

// TestFreeTextRefused checks that every write refuses a reason the ledger
// cannot store or that would mislead a reader, changes nothing, and that a
// reason of MaxReasonLen characters of several bytes each is accepted.
func TestFreeTextRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := b.make(t, engine.Config{})
		ctx := context.Background()
		mustSet(t, e, "s1", "sofa", 10)
		before := mustGet(t, e, "s1", "sofa")

		bad := map[string]string{
			"nul":              "broken\x00leg",
			"bell":             "ring\x07",
			"newline":          "line\nforged",
			"tab":              "a\tb",
			"del":              "x\x7f",
			"c1 control":       "x\u0085y",
			"line separator":   "x\u2028y",
			"bidi override":    "refund \u202eoog",
			"bidi isolate":     "x\u2066y",
			"noncharacter":     "x\uffffy",
			"invalid utf-8":    "x\xffy",
			"too many letters": strings.Repeat("é", engine.MaxReasonLen+1),
		}
		for name, r := range bad {
			_, err := e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 1, Reason: r}, engine.Op{})
			var ve *engine.ValidationError
			require.True(t, errors.As(err, &ve), "%s: adjust answered %v", name, err)
			require.Equal(t, "reason", ve.Field, name)

			_, err = e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 3, Reason: r}, engine.Op{IdempotencyKey: "k-" + name})
			require.True(t, errors.As(err, &ve), "%s: set answered %v", name, err)
			_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 1}}, Reason: r}, engine.Op{})
			require.True(t, errors.As(err, &ve), "%s: checkout answered %v", name, err)
			_, err = e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 1}}, Reason: r}, engine.Op{})
			require.True(t, errors.As(err, &ve), "%s: reserve answered %v", name, err)
		}
		require.Equal(t, before, mustGet(t, e, "s1", "sofa"), "a refused reason changed the item")
		// the key of a refused request stores nothing: it may be used now
		_, err := e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 3}, engine.Op{IdempotencyKey: "k-nul"})
		require.NoError(t, err)

		ok := strings.Repeat("é", engine.MaxReasonLen) // 512 bytes, 256 characters
		_, err = e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 1, Reason: ok}, engine.Op{})
		require.NoError(t, err)
		_, err = e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 1, Reason: "Kratzer 👨‍👩‍👧 «Lager»"}, engine.Op{})
		require.NoError(t, err)
		evs := itemEvents(t, e, "s1", "sofa")
		require.Equal(t, ok, evs[len(evs)-2].Reason)
	})
}

// TestScriptRefusesControlCharacters calls a write script directly, past
// the engine's checks: the script itself refuses a NUL in a reason.
func TestScriptRefusesControlCharacters(t *testing.T) {
	e := realBackend().make(t, engine.Config{Partitions: 1})
	ctx := context.Background()
	mustSet(t, e, "s1", "sofa", 10)
	before := mustGet(t, e, "s1", "sofa")
	now := e.Now().UnixMilli()
	for i, r := range []string{`"a\u0000b"`, `"a\u0007b"`, `5`} {
		req := fmt.Sprintf(`{"op":"adjust","store":"s1","sku":"sofa","delta":1,"reason":%s,"op_id":"·graw%d","generated":true}`, r, i)
		err := e.Scripts().Ops["adjust"].Run(ctx, e.Client(), []string{e.StreamKey(0)}, now, 60000, 60000, 0, 60000, req).Err()
		require.Error(t, err, r)
		require.Contains(t, err.Error(), "INVALID reason", r)
	}
	require.Equal(t, before, mustGet(t, e, "s1", "sofa"))
}
