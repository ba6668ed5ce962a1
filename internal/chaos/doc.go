// Package chaos holds the fault-injection suite of the inventory:
// scenarios that run real concurrent traffic against real Redis and
// PostgreSQL processes while faults are injected on loopback (toxiproxy in
// front of Redis and PostgreSQL, SIGKILLed processes, Redis restarted empty,
// scripts flushed), then check that nothing was oversold and nothing was
// lost: per item the ledger's versions run 1..N without a gap, the sums of
// its deltas equal the state in Redis and in PostgreSQL, every keyed request
// applied once (exactly once when acknowledged), no acknowledged sale is
// missing, and the history of the items is linearizable (porcupine) against
// a sequential model of one item, operations of unknown outcome counting as
// possibly applied.
//
// Scenarios and their tests:
//
//  1. Redis reply lost after the script ran: TestReplyLostRetryAppliesOnce,
//     TestReplyLostUnderLoad.
//  2. Redis unreachable: TestRedisUnreachable.
//  3. Redis restarted empty mid-traffic: TestRedisRestartedEmpty.
//  4. SCRIPT FLUSH mid-traffic: TestScriptFlushTransparent.
//  5. inventory serve SIGKILLed mid-sale: TestAPIKilledMidSale (builds
//     cmd/inventory).
//  6. Persister SIGKILLed before and after COMMIT: TestPersisterKilledMidBatch
//     (the test binary re-executed as a persister).
//  7. PostgreSQL down, stream past its watermark: TestPostgresDown.
//  8. Poison events: TestPoisonEventDeadLettered.
//  9. Reservation expiry racing commit: TestExpiryRacesCommit.
//  10. Slow PostgreSQL: TestSlowPostgresLag.
//  11. Fork after a simulated failover: TestForkAfterFailoverRepaired.
//  12. Slow and vanishing clients: TestSlowClientsServerResponsive.
//  13. Processes SIGKILLed between the two halves of transfer steps:
//     TestTransfersKilledBetweenSteps (the test binary re-executed as
//     transfer traffic); the transfer worker finishes every step once.
//  14. Transfers while replies are lost, then Redis restarted empty:
//     TestTransfersUnderFaults.
//  15. Stock states (tills, web and later sales, fulfilments, moves, adjusts
//     in a state) under lost Redis replies and a PostgreSQL outage:
//     TestStatesUnderFaults (every state's deltas sum exactly to it).
//
// Also: TestEveryRouteForbidsOtherStores (every route, from the server's
// route table, with a store token against another store) and the fuzz tests
// FuzzValidID, FuzzValidIdempotencyKey and FuzzRequestBuilding with their
// seed corpus in testdata/fuzz.
//
// Every scenario runs a short version by default (go test, make test); with
// INVENTORY_CHAOS=long (make chaos) traffic and outages last longer.
// INVENTORY_TEST_DATABASE_URL points at PostgreSQL (default the local "test"
// database); each test makes its own schema and its own redis-server.
//
// The package has no API: everything is in its tests.
package chaos
