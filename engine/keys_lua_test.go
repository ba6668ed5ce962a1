package engine_test

import (
	"context"
	"regexp"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/luascripts"
)

// keysMain returns every key the prelude's helpers make for the arguments
// ARGV[6…] (store, sku, reservation id, idem_key suffix, op id, batch id,
// transfer id),
// as name/value pairs.
const keysMain = `
return {
  'EVENTS', EVENTS, 'BASE', BASE,
  'store_key', store_key(ARGV[6]),
  'customer_units_key', customer_units_key(ARGV[6], ARGV[7]),
  'reservation_key', reservation_key(ARGV[8]),
  'ready_key', ready_key(),
  'stores_key', stores_key(),
  'expiries_key', expiries_key(),
  'idem_key', idem_key(ARGV[9]),
  'generated_idem_key', generated_idem_key(ARGV[10]),
  'batch_key', batch_key(ARGV[11]),
  'transfer_key', transfer_key(ARGV[12]),
  'transfer_out_key', transfer_out_key(ARGV[12]),
  'transfers_key', transfers_key(),
  'store_transfers_key', store_transfers_key(ARGV[6]),
  'store_incoming_key', store_incoming_key(ARGV[6]),
  'transfer_pending_key', transfer_pending_key(),
}
`

// TestLuaKeysMirrorGo runs the prelude's key helpers in Redis and compares
// every key they make with the one engine/keys.go makes for the same
// arguments; every helper of the prelude is covered.
func TestLuaKeysMirrorGo(t *testing.T) {
	c := testsupport.RedisClient(t, 0)
	prelude, err := luascripts.Prelude()
	require.NoError(t, err)
	helpers := regexp.MustCompile(`local function ([a-z_]+_key)\(`).FindAllStringSubmatch(prelude, -1)
	require.NotEmpty(t, helpers)
	sc := redis.NewScript(prelude + keysMain)
	ctx := context.Background()
	for _, tc := range []struct {
		name                                      string
		prefix                                    string
		partitions                                int
		store, sku, rid, principal, opID, batchID string
	}{
		{"default prefix", "inv", 16, "s1", "sofa", "3-0123456789abcdef0123456789abcdef", "web", "order-1", "b1"},
		{"prefix with dots and dashes", "app.inv-" + testsupport.RandomHex(2), 7, "Store_9.x-y", "SKU-000.1", "6-ff", "", "~g" + testsupport.RandomHex(16), testsupport.RandomHex(16)},
		{"one partition", "t", 1, "a", "b", "0-a", "p:with:colons", "k with spaces §0", "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := engine.New(engine.Config{Client: c, Prefix: tc.prefix, Partitions: tc.partitions})
			require.NoError(t, err)
			suffix := engine.IdemKeyOf(tc.principal, tc.opID)
			want := e.KeysForTest(tc.store, tc.sku, tc.rid, suffix, tc.opID, tc.batchID)
			for k, v := range e.TransferKeysForTest(tc.store, tc.rid) {
				want[k] = v
			}
			for _, h := range helpers {
				require.Contains(t, want, h[1], "prelude helper %s has no Go counterpart in the test", h[1])
			}
			p := e.Partition(tc.store)
			res, err := sc.Run(ctx, c, []string{e.StreamKey(p)}, 0, 0, 0, 0, 0,
				tc.store, tc.sku, tc.rid, suffix, tc.opID, tc.batchID, tc.rid).StringSlice()
			require.NoError(t, err)
			got := map[string]string{}
			for i := 0; i+1 < len(res); i += 2 {
				got[res[i]] = res[i+1]
			}
			require.Equal(t, want, got)
		})
	}
}
