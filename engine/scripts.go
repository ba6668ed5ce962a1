package engine

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/shelfline/inventory/luascripts"
)

// Scripts holds every composed script (luascripts.Source), as the engine
// runs them: EVALSHA, with EVAL on NOSCRIPT. It is safe for concurrent use.
type Scripts struct {
	// Ops holds one script per write operation ("set", "adjust", "checkout",
	// "reserve", "commit", "release"), each running one request (ARGV[6]).
	Ops map[string]*redis.Script
	// Batch runs many independent write requests of one partition (ARGV[7…],
	// ARGV[6] the batch id) and returns one result or error per request.
	Batch *redis.Script
	// Expire expires due reservations of one partition.
	Expire *redis.Script
	// Restore overwrites an item with state taken from the ledger.
	Restore *redis.Script
	// RestoreReservation puts back an open reservation taken from the ledger.
	RestoreReservation *redis.Script
	// Read runs the read operations.
	Read *redis.Script
	// Transfer runs the steps and reads of transfers (transfer.lua).
	Transfer *redis.Script
	// Unlock deletes a key only while it holds a given value (a lock's
	// token, an idempotency claim's fingerprint).
	Unlock *redis.Script
	// Extend renews a key's time to live only while it holds a given value
	// (a lock's token).
	Extend *redis.Script
}

// newScripts composes every script from the embedded sources.
func newScripts() (*Scripts, error) {
	s := &Scripts{Ops: map[string]*redis.Script{}}
	for _, op := range luascripts.WriteOps() {
		src, err := luascripts.Source(op)
		if err != nil {
			return nil, err
		}
		s.Ops[op] = redis.NewScript(src)
	}
	for _, x := range []struct {
		name string
		dst  **redis.Script
	}{
		{"batch", &s.Batch}, {"expire", &s.Expire},
		{"restore", &s.Restore}, {"restore_reservation", &s.RestoreReservation}, {"read", &s.Read}, {"transfer", &s.Transfer},
		{"unlock", &s.Unlock}, {"extend", &s.Extend},
	} {
		src, err := luascripts.Source(x.name)
		if err != nil {
			return nil, err
		}
		*x.dst = redis.NewScript(src)
	}
	return s, nil
}

// all returns every script.
func (s *Scripts) all() []*redis.Script {
	all := []*redis.Script{s.Batch, s.Expire, s.Restore, s.RestoreReservation, s.Read, s.Transfer, s.Unlock, s.Extend}
	for _, sc := range s.Ops {
		all = append(all, sc)
	}
	return all
}

// load loads every script into Redis' script cache. On a Redis Cluster
// go-redis sends SCRIPT LOAD to every master. Loading is an optimisation:
// a call falls back to EVAL on NOSCRIPT, so a restarted or flushed Redis
// needs no reload.
func (s *Scripts) load(ctx context.Context, c redis.Scripter) error {
	for _, sc := range s.all() {
		if err := sc.Load(ctx, c).Err(); err != nil {
			return fmt.Errorf("load script: %w", err)
		}
	}
	return nil
}
