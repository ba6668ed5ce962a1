package engine

import "github.com/redis/go-redis/v9"

// Client returns the engine's Redis client, for tests that look at or
// change Redis behind the engine's back.
func (e *Engine) Client() redis.UniversalClient { return e.rdb }
