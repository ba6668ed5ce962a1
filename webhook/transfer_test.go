package webhook_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/webhook"
)

// The transfer name fires on every status change of every kind of
// transfer: created (between stores and from a supplier), partly received,
// received with units written off, cancelled (at the destination and back
// at the source). It fires once per item event of the change and for
// nothing else; a transfer also fires stock_changed and the crossings of the
// stock it moves.
func TestTransferNameFiresOnEveryStatusChange(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	ctx := t.Context()
	const secret = "a-secret-of-16-bytes-or-more"
	transfers := newReceiver(t, secret, nil)
	stock := newReceiver(t, secret, nil)
	v.subscribe(t, transfers.srv.URL, webhook.NameTransfer)
	v.subscribe(t, stock.srv.URL, webhook.NameStockChanged, webhook.NameOutOfStock, webhook.NameBackInStock)
	v.set(t, "wh", "lamp", 10, nil)
	v.set(t, "wh", "chair", 6, nil)
	v.start(t, webhook.Config{})
	require.NotEqual(t, v.e.Partition("wh"), v.e.Partition("shop"), "the two ends are in different partitions")

	// want is, per transfer and status change, the item events it makes.
	type change struct {
		transfer, status string
		events           []string // "<store>/<sku> <TYPE>"
	}
	var want []change
	status := func(id string) string {
		tr, err := v.e.GetTransfer(ctx, id)
		require.NoError(t, err)
		return tr.Status
	}

	// 1: wh → shop, lamp 4 and all 6 chairs; received in two goes, one lamp lost.
	r, err := v.e.CreateTransfer(ctx, engine.TransferRequest{From: "wh", To: "shop",
		Lines: []engine.Line{{SKU: "lamp", Qty: 4}, {SKU: "chair", Qty: 6}}}, engine.Op{})
	require.NoError(t, err)
	t1 := r.Transfer.ID
	require.Equal(t, engine.TransferInTransit, status(t1))
	want = append(want, change{t1, "created", []string{"wh/lamp TRANSFER_OUT", "wh/chair TRANSFER_OUT", "shop/lamp TRANSFER_EXPECTED", "shop/chair TRANSFER_EXPECTED"}})
	_, err = v.e.ReceiveTransfer(ctx, t1, []engine.ReceiveLine{{SKU: "lamp", Received: 2}}, engine.Op{})
	require.NoError(t, err)
	require.Equal(t, engine.TransferInTransit, status(t1))
	want = append(want, change{t1, "partly received", []string{"shop/lamp TRANSFER_IN"}})
	_, err = v.e.ReceiveTransfer(ctx, t1, []engine.ReceiveLine{{SKU: "lamp", Received: 1, Missing: 1}, {SKU: "chair", Received: 6}}, engine.Op{})
	require.NoError(t, err)
	require.Equal(t, engine.TransferReceived, status(t1))
	want = append(want, change{t1, "received", []string{"shop/lamp TRANSFER_IN", "shop/lamp TRANSFER_LOSS", "shop/chair TRANSFER_IN"}})

	// 2: wh → shop, the last 6 lamps, cancelled: they go back to wh.
	r, err = v.e.CreateTransfer(ctx, engine.TransferRequest{From: "wh", To: "shop", Lines: []engine.Line{{SKU: "lamp", Qty: 6}}}, engine.Op{})
	require.NoError(t, err)
	t2 := r.Transfer.ID
	want = append(want, change{t2, "created", []string{"wh/lamp TRANSFER_OUT", "shop/lamp TRANSFER_EXPECTED"}})
	_, err = v.e.CancelTransfer(ctx, t2, engine.Op{})
	require.NoError(t, err)
	require.Equal(t, engine.TransferCancelled, status(t2))
	want = append(want, change{t2, "cancelled", []string{"shop/lamp TRANSFER_CANCEL", "wh/lamp TRANSFER_CANCEL"}})

	// 3: from a supplier, received whole.
	r, err = v.e.CreateTransfer(ctx, engine.TransferRequest{To: "shop", Lines: []engine.Line{{SKU: "rug", Qty: 5}}, Reference: "PO-9"}, engine.Op{})
	require.NoError(t, err)
	t3 := r.Transfer.ID
	want = append(want, change{t3, "created", []string{"shop/rug TRANSFER_EXPECTED"}})
	_, err = v.e.ReceiveTransfer(ctx, t3, []engine.ReceiveLine{{SKU: "rug", Received: 5}}, engine.Op{})
	require.NoError(t, err)
	require.Equal(t, engine.TransferReceived, status(t3))
	want = append(want, change{t3, "received", []string{"shop/rug TRANSFER_IN"}})

	// Every transfer event of the streams, one delivery each.
	var (
		allTransfer []string
		allEvents   int
	)
	for p := range v.e.Partitions() {
		require.NoError(t, v.e.ScanStream(ctx, p, engine.StreamID{}, 100, func(es []engine.StreamEntry) error {
			for _, m := range es {
				ev, err := engine.ParseEvent(m.ID, m.Values)
				require.NoError(t, err)
				allEvents++
				if strings.HasPrefix(ev.Type, "TRANSFER_") {
					allTransfer = append(allTransfer, webhook.EventID(&ev, webhook.NameTransfer))
				}
			}
			return nil
		}))
	}
	wantEvents := 0
	for _, c := range want {
		wantEvents += len(c.events)
	}
	require.Len(t, allTransfer, wantEvents)
	testsupport.WaitFor(t, 30*time.Second, "every transfer event delivered", func() bool {
		return len(transfers.accepted()) >= wantEvents && len(stock.ofType(webhook.NameStockChanged)) >= allEvents
	})
	time.Sleep(200 * time.Millisecond) // nothing more arrives
	gotIDs := []string{}
	byTransfer := map[string][]string{}
	for _, g := range transfers.accepted() {
		require.Equal(t, webhook.NameTransfer, g.payload.Type)
		gotIDs = append(gotIDs, g.id)
		ev := g.payload.Event
		byTransfer[ev.TransferID] = append(byTransfer[ev.TransferID], fmt.Sprintf("%s/%s %s", ev.Store, ev.SKU, ev.Type))
	}
	slices.Sort(gotIDs)
	slices.Sort(allTransfer)
	require.Equal(t, allTransfer, gotIDs, "one delivery per transfer event, nothing else")
	for _, id := range []string{t1, t2, t3} {
		var exp []string
		for _, c := range want {
			if c.transfer == id {
				exp = append(exp, c.events...)
			}
		}
		slices.Sort(exp)
		got := byTransfer[id]
		slices.Sort(got)
		require.Equal(t, exp, got, "transfer %s: an event per item of each status change", id)
	}

	// The same events are stock changes, and cross: the chairs and the
	// lamps leave wh for good (out_of_stock), the cancelled lamps come back
	// (back_in_stock).
	require.Len(t, stock.ofType(webhook.NameStockChanged), allEvents, "stock_changed: every event, transfers' included")
	var outs, backs []string
	for _, g := range stock.ofType(webhook.NameOutOfStock) {
		outs = append(outs, fmt.Sprintf("%s/%s %s", g.payload.Event.Store, g.payload.Event.SKU, g.payload.Event.Type))
	}
	for _, g := range stock.ofType(webhook.NameBackInStock) {
		backs = append(backs, fmt.Sprintf("%s/%s %s", g.payload.Event.Store, g.payload.Event.SKU, g.payload.Event.Type))
	}
	slices.Sort(outs)
	require.Equal(t, []string{"wh/chair TRANSFER_OUT", "wh/lamp TRANSFER_OUT"}, outs)
	require.Contains(t, backs, "wh/lamp TRANSFER_CANCEL")
	require.Zero(t, transfers.badRequests()+stock.badRequests())
}
