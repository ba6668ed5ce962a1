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
