package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// Every Redis key the product uses is named in this file. Each key of
// partition p starts with "<prefix>:{p}:": the hash tag keeps a partition in
// one Redis Cluster slot, so one script can touch all of it. The Lua prelude
// derives the same names from KEYS[1] (the partition's stream), and a test
// checks that both sides agree. docs/design.md lists every key.

// KeyBase returns the prefix of every key of partition p, "<prefix>:{p}:".
func (e *Engine) KeyBase(p int) string {
	return e.cfg.Prefix + ":{" + strconv.Itoa(p) + "}:"
}

// StreamKey returns the key of partition p's event stream (a Redis stream;
// the fields of an entry are in event.go).
func (e *Engine) StreamKey(p int) string { return e.KeyBase(p) + "events" }

// ReadyKey returns the key of partition p's readiness marker (a string: the
// unix milliseconds at which the partition was marked ready).
func (e *Engine) ReadyKey(p int) string { return e.KeyBase(p) + "ready" }

// StoreKey returns the key of the hash holding a store's items: field SKU,
// value the packed item (see ParsePackedItem).
func (e *Engine) StoreKey(store string) string {
	return e.KeyBase(e.Partition(store)) + "st:" + store
}

// DeadLetterKey returns the key of partition p's dead-letter stream: stream
// entries the ledger could not take, with the reason.
func (e *Engine) DeadLetterKey(p int) string { return e.KeyBase(p) + "deadletter" }

// RebuildLockKey returns the key of the lock held while partition p is
// rebuilt from the ledger (a string: the holder's token, with a TTL).
func (e *Engine) RebuildLockKey(p int) string { return e.KeyBase(p) + "rebuild-lock" }

// PersisterHealthKey returns the key of partition p's persister health
// records (a hash: field worker, value the worker's record, which the
// persister defines), with a TTL renewed at every record.
func (e *Engine) PersisterHealthKey(p int) string { return e.KeyBase(p) + "persister-health" }

// storesKey is the set of the stores of partition p.
func (e *Engine) storesKey(p int) string { return e.KeyBase(p) + "stores" }

// customerUnitsKey is the hash of an item's units counted against its
// purchase limit: field customer, value units.
func (e *Engine) customerUnitsKey(store, sku string) string {
	return e.KeyBase(e.Partition(store)) + "cu:" + store + ":" + sku
}

// reservationKey is the hash of a reservation of partition p.
func (e *Engine) reservationKey(p int, id string) string { return e.KeyBase(p) + "r:" + id }

// expiriesKey is the sorted set of partition p's held reservations by
// expires_at (unix milliseconds).
func (e *Engine) expiriesKey(p int) string { return e.KeyBase(p) + "rexp" }

// idemKey is the record of a request made with a client key: idk is
// "<len(principal)>:<principal>:<operation id>" (see identify).
func (e *Engine) idemKey(p int, idk string) string { return e.KeyBase(p) + "idem:" + idk }

// generatedIdemKey is the record of a request under a generated operation id.
func (e *Engine) generatedIdemKey(p int, op string) string { return e.KeyBase(p) + "idem:g:" + op }

// batchKey is the record of a batch call's results, under its batch id.
func (e *Engine) batchKey(p int, id string) string { return e.KeyBase(p) + "idem:b:" + id }

// idemKeyOf is idemKey for a principal and operation id.
func idemKeyOf(principal, opID string) string {
	return strconv.Itoa(len(principal)) + ":" + principal + ":" + opID
}

// claimKey is the key of a client key's claim: a partition chosen by the
// principal and key, holding the fingerprint of the request that took it.
func (e *Engine) claimKey(principal, key string) string {
	sum := sha256.Sum256([]byte(principal + "\x00" + key))
	p := int(uint32(sum[0])<<8|uint32(sum[1])) % e.cfg.Partitions
	return e.KeyBase(p) + "claim:" + hex.EncodeToString(sum[:16])
}

// transferKey is a transfer's record (a hash), in the partition of its
// destination, which decides the transfer's status (docs/design.md §20).
func (e *Engine) transferKey(p int, id string) string { return e.KeyBase(p) + "t:" + id }

// transferOutKey is a transfer's outbound marker (a hash), in the partition
// of its source.
func (e *Engine) transferOutKey(p int, id string) string { return e.KeyBase(p) + "to:" + id }

// transfersKey is the sorted set of partition p's transfer records by
// created ms.
func (e *Engine) transfersKey(p int) string { return e.KeyBase(p) + "tx" }

// storeTransfersKey is the sorted set of the transfers from or to a store,
// by created ms.
func (e *Engine) storeTransfersKey(store string) string {
	return e.KeyBase(e.Partition(store)) + "ts:" + store
}

// storeIncomingKey is the set of the ids of the in-transit transfers to a
// store.
func (e *Engine) storeIncomingKey(store string) string {
	return e.KeyBase(e.Partition(store)) + "tin:" + store
}

// TransferPendingKey returns the key of partition p's pending transfer
// steps (a sorted set: member "<step>:<id>", score due unix ms), which a
// TransferWorker runs once due.
func (e *Engine) TransferPendingKey(p int) string { return e.KeyBase(p) + "tpend" }

// TransferDoneKey returns the key of partition p's finished transfer
// records to delete (a sorted set: member id, score due unix ms), which a
// TransferWorker deletes once due (Config.TransferRetention).
func (e *Engine) TransferDoneKey(p int) string { return e.KeyBase(p) + "tdone" }

// transferStepLockKey is the lock a TransferWorker holds while it runs one
// pending step of partition p.
func (e *Engine) transferStepLockKey(p int, member string) string {
	return e.KeyBase(p) + "tlock:" + member
}
