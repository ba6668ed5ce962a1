// Package scaleout holds the scale-out tests of the inventory: persister
// workers (`inventory persist` processes) splitting a Redis Cluster's
// partitions and taking over from one that dies, master failovers checked
// against the PostgreSQL ledger and repaired by the reconciler, and the
// persister's throughput with one worker against three.
//
// Everything runs against real processes: local Redis Clusters
// (internal/redistest), the shared PostgreSQL (INVENTORY_TEST_DATABASE_URL,
// a schema per test) and the inventory binary, built once per test run.
package scaleout
