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
	// OpTTL is how long the result of a request without a client key (or of a
	// whole batch) is kept under its generated id, so a transport-level retry
	// (by go-redis or the engine) never applies a change twice. It must
	// outlast the longest retry window: command timeout times retries.
	// Defaults to 30s. These records cost Redis memory at the write rate
	// times OpTTL.
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
	// DisableGroupCommit sends every write as its own script call instead
	// of coalescing concurrent writes of a partition into one batch call.
	DisableGroupCommit bool
	// NoFunctions runs every script with EVALSHA even on a Redis with
	// Functions (Redis 7), where the engine otherwise loads each script as a
	// library and calls it with FCALL (docs/design.md §4.1).
	NoFunctions bool
	// GroupMaxBatch bounds the requests of one batch call. Defaults to 128.
	GroupMaxBatch int
	// GroupInflight is how many batch calls of one partition may be in
	// flight at once. Defaults to 2.
	GroupInflight int
	// GroupLinger, when positive, makes a batch that is not full wait this
	// long for more requests before it goes. Defaults to 0: requests that
	// arrive while a batch is in flight form the next one, so batching adds
	// no latency at low load.
	GroupLinger time.Duration
	// GroupTimeout bounds one batch call. Defaults to 5s.
	GroupTimeout time.Duration
	// OnBatch, when set, is called with the size of every batch call (for
	// metrics).
	OnBatch func(size int)
	// TransferGrace is how long the second half of a transfer step (expect
	// after ship, return after cancel) is left to the caller that ran the
	// first before a TransferWorker may run it. Defaults to 2s.
	TransferGrace time.Duration
	// BetweenTransferSteps, when set, runs between the two halves of a
	// transfer's step (ship then expect, cancel then return) with the
	// transfer's id; an error stops the caller there, as a crash would, and
	// leaves the second half to a TransferWorker. For fault-injection
	// tests; nil otherwise.
	BetweenTransferSteps func(id string) error
	// TransferRetention is how long a finished (received or cancelled)
	// transfer's record stays in Redis before a TransferWorker deletes it
	// (and the source's marker); the ledger keeps it for reads
	// (docs/design.md §20.8). Defaults to 168h; negative keeps them for good.
	TransferRetention time.Duration
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
		c.OpTTL = 30 * time.Second
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
	if c.GroupMaxBatch == 0 {
		c.GroupMaxBatch = 128
	}
	if c.GroupInflight == 0 {
		c.GroupInflight = 2
	}
	if c.GroupTimeout == 0 {
		c.GroupTimeout = 5 * time.Second
	}
	if c.TransferGrace == 0 {
		c.TransferGrace = 2 * time.Second
	}
	if c.TransferRetention == 0 {
		c.TransferRetention = DefaultTransferRetention
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
	case c.GroupMaxBatch < 1 || c.GroupMaxBatch > 1000:
		return fmt.Errorf("engine config: GroupMaxBatch must be 1..1000, got %d", c.GroupMaxBatch)
	case c.GroupInflight < 1:
		return fmt.Errorf("engine config: GroupInflight must be at least 1, got %d", c.GroupInflight)
	case c.GroupLinger < 0 || c.GroupLinger > 10*time.Millisecond:
		return fmt.Errorf("engine config: GroupLinger must be 0..10ms, got %s", c.GroupLinger)
	case c.TransferGrace < 0 || c.TransferGrace > time.Hour:
		return fmt.Errorf("engine config: TransferGrace must be 0..1h, got %s", c.TransferGrace)
	case c.TransferRetention > 0 && c.TransferRetention < time.Second:
		return fmt.Errorf("engine config: TransferRetention must be at least 1s (or negative: kept for good), got %s", c.TransferRetention)
	case c.ReservationRetention < time.Second:
		return fmt.Errorf("engine config: ReservationRetention must be at least 1s, got %s", c.ReservationRetention)
	}
	return nil
}
