package persist

import (
	"context"

	"github.com/shelfline/inventory/engine"
)

// SetBeforeForkRestore makes r call f in every fork merge just before it
// restores Redis (to move the item meanwhile).
func SetBeforeForkRestore(r *Reconciler, f func(engine.ItemRef)) { r.beforeForkRestore = f }

// SetBeforeMarkReady makes r call f just before it marks a rebuilt
// partition ready (to hold one partition back while others finish).
func SetBeforeMarkReady(r *Rebuilder, f func(p int)) { r.beforeMarkReady = f }

// SetAfterPage makes r call f after each page of ledger items a run
// compared.
func SetAfterPage(r *Reconciler, f func(ctx context.Context, p int)) { r.afterPage = f }
