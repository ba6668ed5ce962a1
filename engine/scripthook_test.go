package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
)

// scriptCall is one call ObserveScripts reported.
type scriptCall struct {
	name string
	d    time.Duration
	err  error
}

type scriptLog struct {
	mu    sync.Mutex
	calls []scriptCall
}

func (l *scriptLog) observe(name string, d time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, scriptCall{name, d, err})
}

// take returns the calls so far and forgets them.
func (l *scriptLog) take() []scriptCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.calls
	l.calls = nil
	return out
}

func names(calls []scriptCall) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = c.name
	}
	return out
}

func TestObserveScripts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ group, evalsha bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		group := tc.group
		name := map[bool]string{false: "one call per write", true: "group commit"}[group] +
			map[bool]string{false: ", FCALL", true: ", EVALSHA"}[tc.evalsha]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := testsupport.RedisClient(t, 0)
			prefix := testsupport.IsolatedPrefix(t, c)
			e := mustEngine(t, engine.Config{Client: c, Prefix: prefix, Partitions: 4, DisableGroupCommit: !group, NoFunctions: tc.evalsha})
			require.Equal(t, !tc.evalsha, e.Scripts().UsesFunctions())
			ctx := context.Background()
			var log scriptLog
			e.ObserveScripts(log.observe)

			mustSet(t, e, "s1", "sofa", 3)
			write := "set"
			if group {
				write = "batch"
			}
			calls := log.take()
			require.Equal(t, []string{write}, names(calls))
			require.Positive(t, calls[0].d)
			require.NoError(t, calls[0].err)

			mustGet(t, e, "s1", "sofa")
			require.Equal(t, []string{"read"}, names(log.take()))
			_, err := e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 9}}}, engine.Op{})
			var ise *engine.InsufficientStockError
			require.ErrorAs(t, err, &ise)
			if !group {
				calls := log.take()
				require.Equal(t, []string{"checkout"}, names(calls))
				require.Error(t, calls[0].err, "a refusal is the script's error reply")
			}
			log.take()

			// Other commands are not observed; a script that is none of the
			// engine's is "other", and its nil reply is no error.
			require.ErrorIs(t, c.Get(ctx, prefix+":nothing").Err(), redis.Nil)
			err = redis.NewScript(`return nil`).Run(ctx, c, []string{prefix + ":x"}).Err()
			require.ErrorIs(t, err, redis.Nil)
			calls = log.take()
			require.NotEmpty(t, calls)
			for _, call := range calls { // EVALSHA, then EVAL after NOSCRIPT
				require.Equal(t, engine.ScriptOther, call.name)
			}
			require.NoError(t, calls[len(calls)-1].err)
		})
	}
}

// TestScriptsUseFunctionsWhereRedisHasThem: on Redis 7 the engine loads its
// libraries and calls them with FCALL; miniredis has no FUNCTION, so the
// same engine keeps EVALSHA, and so does one told NoFunctions.
func TestScriptsUseFunctionsWhereRedisHasThem(t *testing.T) {
	t.Parallel()
	require.True(t, realBackend().make(t, engine.Config{}).Scripts().UsesFunctions())
	require.False(t, miniBackend().make(t, engine.Config{}).Scripts().UsesFunctions())
	require.False(t, realBackend().make(t, engine.Config{NoFunctions: true}).Scripts().UsesFunctions())
}
