package engine

// Test hooks: unexported names engine_test needs.

// KeysForTest returns the keys of keys.go that scripts name too, for the
// partition of store, by the name of the prelude.lua helper that mirrors
// each (EVENTS and BASE are the prelude's KEYS[1] and its base).
func (e *Engine) KeysForTest(store, sku, reservationID, idemSuffix, opID, batchID string) map[string]string {
	p := e.Partition(store)
	return map[string]string{
		"EVENTS":             e.StreamKey(p),
		"BASE":               e.KeyBase(p),
		"store_key":          e.StoreKey(store),
		"customer_units_key": e.customerUnitsKey(store, sku),
		"reservation_key":    e.reservationKey(p, reservationID),
		"ready_key":          e.ReadyKey(p),
		"stores_key":         e.storesKey(p),
		"expiries_key":       e.expiriesKey(p),
		"idem_key":           e.idemKey(p, idemSuffix),
		"generated_idem_key": e.generatedIdemKey(p, opID),
		"batch_key":          e.batchKey(p, batchID),
	}
}

// IdemKeyOf is idemKeyOf: the record key suffix of a client key, sent to
// the scripts as the request member idem_key.
var IdemKeyOf = idemKeyOf
