package engine

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// Available to promise (DESIGN §12, docs/design.md §20.6).

// Promise answers when a quantity of a SKU can be promised at a store.
type Promise struct {
	Store     string `json:"store"`
	SKU       string `json:"sku"`
	Qty       int64  `json:"qty"`
	Available int64  `json:"available"`
	// Date is now when Qty <= Available; else the earliest expected_at by
	// which the store's available stock plus the open units of in-transit
	// transfers to it reach Qty; nil when that never happens.
	Date *time.Time `json:"date"`
	// Sources lists the transfers Date counts on, in order of expected_at
	// (empty when Date is now or nil).
	Sources []PromiseSource `json:"sources"`
}

// PromiseSource is one in-transit transfer a promise counts on.
type PromiseSource struct {
	Transfer   string    `json:"transfer"`
	ExpectedAt time.Time `json:"expected_at"`
	// Qty is the transfer's open units of the SKU.
	Qty int64 `json:"qty"`
}

// ChainPromise answers a promise for every store that carries a SKU,
// soonest first (stores that can promise now, then by date, those that
// never can last; ties by store).
type ChainPromise struct {
	SKU    string    `json:"sku"`
	Qty    int64     `json:"qty"`
	Stores []Promise `json:"stores"`
}

func validPromise(sku string, qty int64) error {
	if !ValidID(sku) {
		return invalid("sku", "must match %s", idRE)
	}
	if qty < 1 || qty > MaxQty {
		return invalid("qty", "must be 1..%d", MaxQty)
	}
	return nil
}

// PromiseAt answers when qty units of sku can be promised at store.
// Errors: *ValidationError, ErrNotFound (the store does not carry the SKU),
// ErrPartitionNotReady.
func (e *Engine) PromiseAt(ctx context.Context, store, sku string, qty int64) (Promise, error) {
	if err := validPromise(sku, qty); err != nil {
		return Promise{}, err
	}
	it, err := e.GetItem(ctx, store, sku)
	if err != nil {
		return Promise{}, err
	}
	open, err := e.OpenTransfers(ctx, store)
	if err != nil {
		return Promise{}, err
	}
	return promise(it, qty, open, e.Now()), nil
}

// PromiseChain answers PromiseAt for every store that carries sku.
// Errors: *ValidationError, ErrPartitionNotReady.
func (e *Engine) PromiseChain(ctx context.Context, sku string, qty int64) (ChainPromise, error) {
	if err := validPromise(sku, qty); err != nil {
		return ChainPromise{}, err
	}
	a, err := e.Availability(ctx, sku)
	if err != nil {
		return ChainPromise{}, err
	}
	now := e.Now()
	out := ChainPromise{SKU: sku, Qty: qty, Stores: make([]Promise, 0, len(a.Stores))}
	for _, it := range a.Stores {
		open, err := e.OpenTransfers(ctx, it.Store)
		if err != nil {
			return ChainPromise{}, fmt.Errorf("promise of %s: %w", sku, err)
		}
		out.Stores = append(out.Stores, promise(it, qty, open, now))
	}
	sort.SliceStable(out.Stores, func(i, j int) bool {
		a, b := out.Stores[i].Date, out.Stores[j].Date
		switch {
		case a == nil || b == nil:
			return a != nil && b == nil
		case !a.Equal(*b):
			return a.Before(*b)
		}
		return out.Stores[i].Store < out.Stores[j].Store
	})
	return out, nil
}

// promise computes a store's promise from its item and its in-transit
// transfers: those without expected_at are left out.
func promise(it Item, qty int64, open []Transfer, now time.Time) Promise {
	p := Promise{Store: it.Store, SKU: it.SKU, Qty: qty, Available: it.Available, Sources: []PromiseSource{}}
	if qty <= it.Available {
		t := now.UTC().Truncate(time.Millisecond)
		p.Date = &t
		return p
	}
	var src []PromiseSource
	for _, t := range open {
		if t.ExpectedAt == nil || t.Status != TransferInTransit {
			continue
		}
		for _, l := range t.Lines {
			if l.SKU == it.SKU && l.Open() > 0 {
				src = append(src, PromiseSource{Transfer: t.ID, ExpectedAt: *t.ExpectedAt, Qty: l.Open()})
			}
		}
	}
	sort.SliceStable(src, func(i, j int) bool {
		if !src[i].ExpectedAt.Equal(src[j].ExpectedAt) {
			return src[i].ExpectedAt.Before(src[j].ExpectedAt)
		}
		return src[i].Transfer < src[j].Transfer
	})
	have := it.Available
	for i, s := range src {
		have += s.Qty
		if have >= qty {
			d := s.ExpectedAt
			p.Date = &d
			p.Sources = src[:i+1]
			return p
		}
	}
	return p
}
