package engine

import (
	"regexp"
	"time"
)

var (
	idRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	prefixRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	resIDRE  = regexp.MustCompile(`^([0-9]{1,5})-[0-9a-f]{32}$`)
)

// Limits of the data model (docs/design.md §2).
const (
	MaxQty       = 1_000_000_000
	MaxOnHand    = 1_000_000_000_000
	MaxLines     = 100
	MaxReasonLen = 256
	MaxKeyLen    = 255
	MaxTTL       = 24 * time.Hour
	DefaultTTL   = 15 * time.Minute
)

// ValidID reports whether s is a valid store, SKU or customer id.
func ValidID(s string) bool { return idRE.MatchString(s) }

// ValidateStore returns a *ValidationError naming the field "store" when
// store is not a valid id: for callers that take a store without an engine
// operation (a feed, the ledger's history).
func ValidateStore(store string) error {
	if !ValidID(store) {
		return invalid("store", "must match %s", idRE)
	}
	return nil
}

// ValidateItemRef returns a *ValidationError naming the field ("store" or
// "sku") that is not a valid id.
func ValidateItemRef(store, sku string) error { return validStoreSKU(store, sku) }
