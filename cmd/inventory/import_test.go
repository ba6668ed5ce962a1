package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/httpapi"
	"github.com/shelfline/inventory/internal/testsupport"
)

// importServer is a real API on a loopback port over real Redis (own
// prefix), without the ledger.
func importServer(t *testing.T) (string, *engine.Engine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb := testsupport.RedisClient(t, 0)
	prefix := testsupport.IsolatedPrefix(t, rdb)
	e, err := engine.New(engine.Config{Client: rdb, Prefix: prefix, Partitions: 4})
	require.NoError(t, err)
	require.NoError(t, e.Init(ctx))
	keys, err := httpapi.ParseKeys("imp-token:admin")
	require.NoError(t, err)
	s, err := httpapi.New(httpapi.Config{Engine: e, Keys: keys})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx, ln) }()
	t.Cleanup(func() { stop(); <-done })
	return "http://" + ln.Addr().String(), e
}

// TestImport: a file of set lines, adjustments, an adjustment in a state
// and bad lines is applied in order, chunk by chunk; the refused lines go to
// the report with their problem; running the file again applies nothing
// twice.
func TestImport(t *testing.T) {
	url, e := importServer(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "stock.csv")
	var b strings.Builder
	b.WriteString("store,sku,on_hand,delta,reason,state\n")
	b.WriteString("s1,sofa,10,,,\n")             // 2: set
	b.WriteString("s1,lamp,5,,,\n")              // 3: set
	b.WriteString("s1,sofa,,-3,sold,\n")         // 4: adjust
	b.WriteString("s1,sofa,,-1,,\n")             // 5: adjust, default reason
	b.WriteString("s1,ghost,,2,,\n")             // 6: refused by the server: no such item
	b.WriteString("s1,bad sku,1,,,\n")           // 7: refused here: invalid SKU
	b.WriteString("s1,lamp,,x,,\n")              // 8: refused here: not a number
	b.WriteString("s1,lamp,,-2,broke,damaged\n") // 9: adjust in a state (-2 damaged: refused, none damaged)
	b.WriteString("s2,chair,7,,,\n")             // 10: set
	b.WriteString("s2,chair,,-10,,\n")           // 11: refused by the server: below 0
	b.WriteString("s1,lamp,,1,,\n")              // 12: adjust
	b.WriteString("s1,lamp,,1,,\n")              // 13: the same line again: applies again
	require.NoError(t, os.WriteFile(file, []byte(b.String()), 0o644))
	env := map[string]string{"INVENTORY_IMPORT_URL": url, "INVENTORY_IMPORT_TOKEN": "imp-token"}

	check := func() {
		t.Helper()
		ctx := context.Background()
		sofa, err := e.GetItem(ctx, "s1", "sofa")
		require.NoError(t, err)
		require.Equal(t, int64(6), sofa.OnHand)
		require.Equal(t, int64(3), sofa.Version)
		lamp, err := e.GetItem(ctx, "s1", "lamp")
		require.NoError(t, err)
		require.Equal(t, int64(7), lamp.OnHand)
		require.Equal(t, int64(3), lamp.Version)
		chair, err := e.GetItem(ctx, "s2", "chair")
		require.NoError(t, err)
		require.Equal(t, int64(7), chair.OnHand)
	}
	for run := 0; run < 2; run++ {
		code, out, errOut := runCmd(t, context.Background(), env, "import", file, "--chunk", "2", "--progress", "lines")
		require.Equal(t, 0, code, "%s\n%s", out, errOut)
		require.Contains(t, out, "12 lines in")
		require.NotContains(t, out, " in 0s ")
		require.Contains(t, out, "7 applied, 5 refused")
		require.Contains(t, errOut, "import: 12/12 lines (100.0%)")
		check() // the second run replays: nothing applied twice

		f, err := os.Open(filepath.Join(dir, "stock.refused.csv"))
		require.NoError(t, err)
		rows, err := csv.NewReader(f).ReadAll()
		f.Close()
		require.NoError(t, err)
		require.Len(t, rows, 6)
		lines := map[string]string{}
		for _, r := range rows[1:] {
			lines[r[0]] = r[3] + " " + r[4]
		}
		require.Contains(t, lines["6"], "404")
		require.Contains(t, lines["7"], "sku")
		require.Contains(t, lines["8"], "delta must be")
		require.Contains(t, lines["9"], "409")
		require.Contains(t, lines["11"], "409")
	}
}

// TestImportParallel: chunks sent 8 at a time give what the file gives
// line after line: on each item the lines apply in file order (a delta
// that would take on_hand below 0 is refused exactly where it is in the
// file), the report lists the refused lines in file order, and a rerun
// with another --parallel applies no line twice (every version stays).
func TestImportParallel(t *testing.T) {
	url, e := importServer(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "par.csv")
	rnd := rand.New(rand.NewPCG(7, 17))
	type ref struct{ store, sku string }
	var items []ref
	for s := 0; s < 3; s++ {
		for k := 0; k < 8; k++ {
			items = append(items, ref{fmt.Sprintf("s%d", s), fmt.Sprintf("k%d", k)})
		}
	}
	onHand := map[ref]int64{}
	var refused []int
	var b strings.Builder
	b.WriteString("store,sku,on_hand,delta\n")
	n := 1
	for _, it := range items {
		n++
		v := rnd.Int64N(4)
		onHand[it] = v
		fmt.Fprintf(&b, "%s,%s,%d,\n", it.store, it.sku, v)
	}
	for i := 0; i < 600; i++ {
		n++
		it := items[rnd.IntN(len(items))]
		switch {
		case i%97 == 50: // refused before sending
			fmt.Fprintf(&b, "%s,%s,,zero\n", it.store, it.sku)
			refused = append(refused, n)
		case i%61 == 30: // a set among the deltas
			v := rnd.Int64N(5)
			onHand[it] = v
			fmt.Fprintf(&b, "%s,%s,%d,\n", it.store, it.sku, v)
		default:
			d := []int64{-3, -2, -1, 1, 2}[rnd.IntN(5)]
			fmt.Fprintf(&b, "%s,%s,,%d\n", it.store, it.sku, d)
			if onHand[it]+d < 0 {
				refused = append(refused, n)
			} else {
				onHand[it] += d
			}
		}
	}
	require.NoError(t, os.WriteFile(file, []byte(b.String()), 0o644))
	require.Greater(t, len(refused), 20, "the file has refusals to order")
	env := map[string]string{"INVENTORY_IMPORT_URL": url, "INVENTORY_IMPORT_TOKEN": "imp-token"}

	versions := map[ref]int64{}
	for run, parallel := range []string{"8", "3"} {
		code, out, errOut := runCmd(t, context.Background(), env, "import", file, "--chunk", "7", "--parallel", parallel, "--progress", "off")
		require.Equal(t, 0, code, "%s\n%s", out, errOut)
		require.Contains(t, out, fmt.Sprintf("%d lines in", n-1))
		require.Contains(t, out, fmt.Sprintf("%d applied, %d refused", n-1-len(refused), len(refused)))
		for _, it := range items {
			got, err := e.GetItem(context.Background(), it.store, it.sku)
			require.NoError(t, err)
			require.Equal(t, onHand[it], got.OnHand, "%v after run %d", it, run)
			if run == 0 {
				versions[it] = got.Version
			} else {
				require.Equal(t, versions[it], got.Version, "%v: the rerun applied a line again", it)
			}
		}
		f, err := os.Open(filepath.Join(dir, "par.refused.csv"))
		require.NoError(t, err)
		rows, err := csv.NewReader(f).ReadAll()
		f.Close()
		require.NoError(t, err)
		var lines []int
		for _, r := range rows[1:] {
			l, err := strconv.Atoi(r[0])
			require.NoError(t, err)
			lines = append(lines, l)
		}
		require.Equal(t, refused, lines, "the refused lines, in file order")
	}
}
