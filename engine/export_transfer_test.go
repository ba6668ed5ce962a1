package engine

// TransferKeysForTest returns the transfer keys of keys.go that scripts name
// too, for the partition of store and a transfer id, by the name of the
// prelude.lua helper that mirrors each.
func (e *Engine) TransferKeysForTest(store, id string) map[string]string {
	p := e.Partition(store)
	return map[string]string{
		"transfer_key":         e.transferKey(p, id),
		"transfer_out_key":     e.transferOutKey(p, id),
		"transfers_key":        e.transfersKey(p),
		"store_transfers_key":  e.storeTransfersKey(store),
		"store_incoming_key":   e.storeIncomingKey(store),
		"transfer_pending_key": e.TransferPendingKey(p),
	}
}

// SetAfterShip sets the hook that runs between the two halves of a
// transfer step (ship then expect, cancel then return); its error stops the
// caller there, as a crash would.
func (e *Engine) SetAfterShip(fn func(id string) error) { e.afterShip = fn }
