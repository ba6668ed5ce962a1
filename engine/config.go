package engine

import (
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Config configures an Engine. The zero value of every field but Client
// selects its documented default.
type Config struct {
	// Client is the Redis connection: a *redis.Client, a *redis.ClusterClient
	// or a *redis.Ring-free UniversalClient. Required.
	Client redis.UniversalClient
	// Prefix starts every key, so several deployments or tests share one Redis.
	// Defaults to "inv".
	Prefix string
	// Partitions is the number of partitions stores are spread over; fixed for
	// a deployment's life. Defaults to 16. At most 16384.
	Partitions int
	// IdempotencyTTL is how long the result of a request made with a client's
	// Idempotency-Key is kept for replay. Defaults to 24h.
	IdempotencyTTL time.Duration
	// OpTTL is how long the result of a request without a client key is kept
	// under its generated operation id, so a transport-level retry never
	// applies a change twice. Defaults to 10m.
	OpTTL time.Duration
	// StreamHighWatermark is the number of entries in a partition's event
	// stream past which writes are refused with ErrBackpressure (the persister
	// is behind). Defaults to 500000. Negative disables the check.
	StreamHighWatermark int64
	// ReservationRetention is how long a committed, released or expired
	// reservation stays readable. Defaults to 24h.
	ReservationRetention time.Duration
	// Clock returns the current time. Defaults to time.Now.
	Clock func() time.Time
	// Logger receives the engine's logs. Defaults to zap.NewNop().
	Logger *zap.Logger
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = "inv"
	}
	if c.Partitions == 0 {
		c.Partitions = 16
	}
	if c.IdempotencyTTL == 0 {
		c.IdempotencyTTL = 24 * time.Hour
	}
	if c.OpTTL == 0 {
		c.OpTTL = 10 * time.Minute
	}
	if c.StreamHighWatermark == 0 {
		c.StreamHighWatermark = 500000
	}
	if c.ReservationRetention == 0 {
		c.ReservationRetention = 24 * time.Hour
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Client == nil:
		return fmt.Errorf("engine config: Client is required")
	case c.Partitions < 1 || c.Partitions > 16384:
		return fmt.Errorf("engine config: Partitions must be 1..16384, got %d", c.Partitions)
	case !prefixRE.MatchString(c.Prefix):
		return fmt.Errorf("engine config: Prefix %q must match %s", c.Prefix, prefixRE)
	case c.IdempotencyTTL < time.Second:
		return fmt.Errorf("engine config: IdempotencyTTL must be at least 1s, got %s", c.IdempotencyTTL)
	case c.OpTTL < time.Second:
		return fmt.Errorf("engine config: OpTTL must be at least 1s, got %s", c.OpTTL)
	case c.ReservationRetention < time.Second:
		return fmt.Errorf("engine config: ReservationRetention must be at least 1s, got %s", c.ReservationRetention)
	}
	return nil
}
