package engine

import (
	"time"

	"github.com/redis/go-redis/v9"
)

// FailFast tunes a go-redis client for the engine: one dial attempt with a
// short timeout, and no command retries by go-redis (the engine retries a
// call whose reply was lost itself, with the same operation id). With
// go-redis' defaults an unreachable Redis is known only after five dials and
// three retries, about 5 s; with these, in well under a second, so the API
// answers 503 at once.
func FailFast(o *redis.Options) {
	o.DialTimeout = 500 * time.Millisecond
	o.DialerRetries = 1
	o.MaxRetries = -1
}

// FailFastCluster is FailFast for a cluster client.
func FailFastCluster(o *redis.ClusterOptions) {
	o.DialTimeout = 500 * time.Millisecond
	o.DialerRetries = 1
	o.MaxRetries = -1
}
