package engine

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/shelfline/inventory/luascripts"
)

// Scripts holds every composed script (luascripts.Source), as the engine
// runs them: FCALL of its library (luascripts.Library) on a Redis that took
// every library at start-up, else EVALSHA, with EVAL on NOSCRIPT. It is
// safe for concurrent use.
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

	// fns holds the function form of every script the engine runs through
	// Engine.run or fanOut, by script.
	fns map[*redis.Script]*function
	// fcall is set once every library is loaded (load): calls use FCALL.
	fcall atomic.Bool
}

// function is a script's function form: its library's code and its
// function's name (luascripts.Library).
type function struct {
	code, name string
}

// newScripts composes every script from the embedded sources.
func newScripts() (*Scripts, error) {
	s := &Scripts{Ops: map[string]*redis.Script{}, fns: map[*redis.Script]*function{}}
	addFunction := func(name string, sc *redis.Script) error {
		code, fn, err := luascripts.Library(name)
		if err != nil {
			return err
		}
		s.fns[sc] = &function{code: code, name: fn}
		return nil
	}
	for _, op := range luascripts.WriteOps() {
		src, err := luascripts.Source(op)
		if err != nil {
			return nil, err
		}
		s.Ops[op] = redis.NewScript(src)
		if err := addFunction(op, s.Ops[op]); err != nil {
			return nil, err
		}
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
		if x.name != "unlock" && x.name != "extend" { // called with Run, not Engine.run
			if err := addFunction(x.name, *x.dst); err != nil {
				return nil, err
			}
		}
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

// load loads every script into Redis' script cache (on a Redis Cluster
// go-redis sends SCRIPT LOAD to every master). Loading scripts is an
// optimisation: a call falls back to EVAL on NOSCRIPT, so a restarted or
// flushed Redis needs no reload.
func (s *Scripts) load(ctx context.Context, c redis.UniversalClient) error {
	for _, sc := range s.all() {
		if err := sc.Load(ctx, c).Err(); err != nil {
			return fmt.Errorf("load script: %w", err)
		}
	}
	return nil
}

// loadFunctions loads every library (FUNCTION LOAD, on every master of a
// cluster); calls use FCALL once every library is in. On an error (a Redis
// without Functions: before 7, miniredis; or one that refuses FUNCTION
// LOAD) calls keep EVALSHA. A call whose Redis lost the library loads it
// again (call), so a restarted or flushed Redis needs no reload either.
func (s *Scripts) loadFunctions(ctx context.Context, c redis.UniversalClient) error {
	for _, f := range s.fns {
		if err := f.load(ctx, c); err != nil {
			s.fcall.Store(false)
			return err
		}
	}
	s.fcall.Store(true)
	return nil
}

// function returns sc's function form when calls use FCALL.
func (s *Scripts) function(sc *redis.Script) *function {
	if !s.fcall.Load() {
		return nil
	}
	return s.fns[sc]
}

// UsesFunctions reports whether the scripts run with FCALL (every library
// was loaded at start-up) rather than EVALSHA.
func (s *Scripts) UsesFunctions() bool { return s.fcall.Load() }

// FunctionNames returns the names of the engine's functions, each also
// its library's name.
func (s *Scripts) FunctionNames() []string {
	out := make([]string, 0, len(s.fns))
	for _, f := range s.fns {
		out = append(out, f.name)
	}
	return out
}

// load loads f's library on c, on every master of a cluster. A library of
// the same name is the same code (the name holds its hash), so one already
// there is kept.
func (f *function) load(ctx context.Context, c redis.UniversalClient) error {
	one := func(ctx context.Context, c redis.Cmdable) error {
		err := c.FunctionLoad(ctx, f.code).Err()
		if err != nil && !strings.Contains(err.Error(), "already exists") {
			return fmt.Errorf("load function %s: %w", f.name, err)
		}
		return nil
	}
	if cc, ok := c.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return one(ctx, m) })
	}
	return one(ctx, c)
}

// call runs sc with keys and args: FCALL of its function when the scripts
// use Functions, else EVALSHA with EVAL on NOSCRIPT. A Redis that lost the
// library (restarted empty, a failover to a node that never had it, or
// FUNCTION FLUSH) answers "Function not found": the library is loaded again
// and the call made once more, like EVAL after NOSCRIPT; a node that does
// not know FCALL or refuses it gets the EVALSHA form.
func (s *Scripts) call(ctx context.Context, c redis.UniversalClient, sc *redis.Script, keys []string, args ...any) *redis.Cmd {
	f := s.function(sc)
	if f == nil {
		return sc.Run(ctx, c, keys, args...)
	}
	cmd := c.FCall(ctx, f.name, keys, args...)
	err := cmd.Err()
	switch {
	case err == nil:
		return cmd
	case functionMissing(err):
		if f.load(ctx, c) != nil {
			return sc.Run(ctx, c, keys, args...)
		}
		cmd = c.FCall(ctx, f.name, keys, args...)
		if err := cmd.Err(); err != nil && (functionMissing(err) || functionRefused(err)) {
			return sc.Run(ctx, c, keys, args...)
		}
		return cmd
	case functionRefused(err):
		return sc.Run(ctx, c, keys, args...)
	}
	return cmd
}

// functionMissing reports whether err is Redis' answer to FCALL of a
// function it does not have.
func functionMissing(err error) bool {
	return strings.HasPrefix(err.Error(), "ERR Function not found")
}

// functionRefused reports whether err is a Redis that does not know FCALL
// or does not let this client run it.
func functionRefused(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "ERR unknown command") || strings.HasPrefix(msg, "NOPERM")
}
