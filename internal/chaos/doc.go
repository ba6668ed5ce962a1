// Package chaos holds the fault-injection suite of the inventory (issue 6):
// scenarios that run real concurrent traffic against real Redis and
// PostgreSQL processes while faults are injected on loopback (toxiproxy in
// front of Redis and PostgreSQL, SIGKILLed processes, Redis restarted empty,
// scripts flushed), then check that nothing was oversold and nothing was
// lost: per item the ledger's versions run 1..N without a gap, the sums of
// its deltas equal the state in Redis and in PostgreSQL, every keyed request
// applied once, and the history of the hot items is linearizable
// (porcupine) against a sequential model of one item.
//
// Every scenario runs a short version by default (go test, make test); with
// INVENTORY_CHAOS=long (make chaos) traffic and outages last longer.
//
// The package has no API: everything is in its tests.
package chaos
