// Package persist is the durable half of the inventory: the PostgreSQL
// ledger, its schema migrations, the persister that drains the partitions'
// Redis streams into it, the rebuild of a Redis partition from it, and the
// reconciler that compares the two. It reaches Redis only through the
// engine's methods (its streams, locks and readiness markers), never with a
// Redis client of its own.
//
// # Why the tables are partitioned by store_id
//
// inventory_items and inventory_events are hash-partitioned by store_id (8
// partitions) and every key starts with store_id. Every query the product
// makes names a store (an item's history, a store's items, the stores of one
// Redis partition for a rebuild), so PostgreSQL prunes to one partition and
// its small indexes; one store's items and its whole history live together,
// so a rebuild or reconciliation of a store reads one partition. Hashing,
// rather than ranges of store ids, spreads a chain's stores evenly without
// anyone choosing boundaries, and the persister's batches (which mix the
// stores of a Redis partition) land in several PostgreSQL partitions whose
// indexes stay small enough to stay in memory. We do not partition the ledger
// by time: it is kept for audit and read by item, not by period, and a time
// key would have to join the primary key. Finally, store_id is the
// distribution column a distributed PostgreSQL (Citus) needs, so the same
// schema scales out by store when one server is not enough (docs/design.md §14).
//
// # Delivery guarantees
//
// The persister writes a batch in one transaction and acknowledges the
// stream entries only after COMMIT. A crash before COMMIT leaves the entries
// pending; a crash between COMMIT and XACK re-delivers entries whose rows
// exist, and the ledger's primary key (store_id, sku, version) turns the
// re-delivery into a no-op. Redis trims a stream only behind what is
// acknowledged.
//
// # Forks after a Redis failover
//
// Redis replicates asynchronously, so a new master can lack an item's last
// versions that the ledger already holds; new writes then reuse those
// versions under other operation ids. The persister holds back every event
// of such an item from the first conflicting one on (and any event that
// does not continue the ledger's state), records each whole in
// drift_findings ('fork', 'held_back') and acknowledges it. The
// reconciler's repair merges the two histories once none of the item's
// events waits in the stream: one RECONCILE event at the ledger's next
// version carries what the new history changed since the shared version,
// Redis is restored to the merged state, and the findings are marked
// resolved. A merge that would sell units twice is clamped and reported as
// 'oversold' for a person.
//
// # Wiring it
//
// With a ledger, a process calls Migrate, then the engine's LoadScripts (not
// Init, which would mark partitions ready without a rebuild), then runs
// Rebuilder.Run, Persister.Run and Reconciler.Run next to the API and the
// sweeper. The Rebuilder sets each readiness marker: from the ledger when
// Redis lost a partition, straight away when the ledger is empty. Each
// partition a Persister owns keeps one Redis connection in a blocking read,
// so the Redis client's pool must be larger than the number of owned
// partitions; the PostgreSQL pool needs a connection per partition writing
// at once for full throughput (fewer only queue).
package persist
