package engine

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// ScriptOther is the name ObserveScripts gives a script call that is none
// of the engine's scripts by hash: an EVAL (the fallback after NOSCRIPT
// sends the source, not the hash), or another script on the same client.
const ScriptOther = "other"

// ObserveScripts makes the engine call observe after every script call on
// its Redis client (EVALSHA, EVAL and FCALL) with the script's name, the call's
// duration and its error (nil for a script that returned nil). The name is
// a write operation's ("set", "adjust", …), "read", "expire", "batch",
// "restore", "restore_reservation", or ScriptOther. observe runs on the
// caller's goroutine, so it must be quick and safe for concurrent use; the
// hook adds no allocation of its own to a call. Each call of ObserveScripts
// adds an observer, never removed. Safe to call while the engine serves.
func (e *Engine) ObserveScripts(observe func(script string, d time.Duration, err error)) {
	e.rdb.AddHook(scriptHook{observe: observe, names: e.scriptNames()})
}

// scriptNames maps the hash of each of the engine's timed scripts, and the
// name of its function (FCALL), to its name.
func (e *Engine) scriptNames() map[string]string {
	sc := e.scripts
	names := make(map[string]string, len(sc.Ops)+5)
	add := func(x *redis.Script, name string) {
		names[x.Hash()] = name
		if f := sc.fns[x]; f != nil {
			names[f.name] = name
		}
	}
	for op, x := range sc.Ops {
		add(x, op)
	}
	add(sc.Read, "read")
	add(sc.Expire, "expire")
	add(sc.Batch, "batch")
	add(sc.Restore, "restore")
	add(sc.RestoreReservation, "restore_reservation")
	return names
}

// scriptHook is the go-redis hook behind ObserveScripts.
type scriptHook struct {
	observe func(script string, d time.Duration, err error)
	names   map[string]string
}

var _ redis.Hook = scriptHook{}

func (scriptHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h scriptHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		name := cmd.Name()
		if name != "evalsha" && name != "eval" && name != "fcall" {
			return next(ctx, cmd)
		}
		start := time.Now()
		err := next(ctx, cmd)
		obsErr := err
		if errors.Is(err, redis.Nil) {
			obsErr = nil
		}
		h.observe(h.script(cmd), time.Since(start), obsErr)
		return err
	}
}

func (h scriptHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// script names the script cmd runs: its second argument is the hash.
func (h scriptHook) script(cmd redis.Cmder) string {
	if args := cmd.Args(); len(args) > 1 {
		if sha, ok := args[1].(string); ok {
			if n, ok := h.names[sha]; ok {
				return n
			}
		}
	}
	return ScriptOther
}
