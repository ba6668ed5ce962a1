package main

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/tracing"
)

const (
	logErr        = "error"
	logAddr       = "addr"
	logRole       = "role"
	logPartition  = "partition"
	logDrainDelay = "drain_delay"
)

func newLogger(level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("INVENTORY_LOG_LEVEL / --log-level: %w", err)
	}
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.Sampling = nil
	zc.EncoderConfig.TimeKey = "time"
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	return zc.Build()
}

// deps are the connections a subcommand uses. close releases them.
type deps struct {
	rdb   redis.UniversalClient
	mini  *miniredis.Miniredis
	pool  *pgxpool.Pool
	e     *engine.Engine
	log   *zap.Logger
	close func()
	// tracing tells whether OpenTelemetry traces go out (the OTEL_*
	// variables): Redis and PostgreSQL are then instrumented, and the API
	// traces its requests.
	tracing bool
}

// start makes a subcommand's logger, sets up OpenTelemetry traces when the
// OTEL_* variables ask for them (see internal/tracing) and connects Redis
// and, unless the ledger is off, PostgreSQL; stop closes them, flushes the
// traces not yet sent and flushes the log.
func start(ctx context.Context, cfg *config) (d *deps, stop func(), err error) {
	log, err := newLogger(cfg.LogLevel)
	if err != nil {
		return nil, nil, err
	}
	shutdownTracing, traced, err := tracing.Setup(ctx, "inventory", buildVersion())
	if err != nil {
		_ = log.Sync()
		return nil, nil, err
	}
	flushTraces := func() {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(fctx); err != nil {
			log.Warn("flush traces", zap.Error(err))
		}
	}
	if traced {
		log.Info("OpenTelemetry traces on")
	}
	d, err = connectTraced(ctx, cfg, log, traced)
	if err != nil {
		flushTraces()
		_ = log.Sync()
		return nil, nil, err
	}
	return d, func() {
		d.close()
		flushTraces()
		_ = log.Sync()
	}, nil
}

// connect opens Redis (or the embedded miniredis) and, unless the ledger is
// off, PostgreSQL, and builds the engine.
func connect(ctx context.Context, cfg *config, log *zap.Logger) (*deps, error) {
	return connectTraced(ctx, cfg, log, false)
}

// connectTraced is connect; traced instruments both clients for
// OpenTelemetry.
func connectTraced(ctx context.Context, cfg *config, log *zap.Logger, traced bool) (*deps, error) {
	d := &deps{log: log, tracing: traced}
	var closers []func()
	d.close = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	poolSize := 2*cfg.Partitions + 64 // blocking stream reads hold one each
	var target *redisTarget           // a real Redis, not the embedded one
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if cfg.embedded() {
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("start embedded redis: %w", err)
		}
		d.mini = m
		closers = append(closers, m.Close)
		log.Warn("!!! EMBEDDED REDIS: running on an in-process miniredis at " + m.Addr() +
			"; every item is lost when this process exits. Set INVENTORY_REDIS_URL to a real Redis for anything but a demo.")
		d.rdb = redis.NewClient(&redis.Options{Addr: m.Addr(), PoolSize: poolSize})
		closers = append(closers, func() { _ = d.rdb.Close() })
	} else {
		// A cluster (INVENTORY_REDIS_CLUSTER_ADDRS) or one Redis
		// (INVENTORY_REDIS_URL), with user, password and TLS as the URL
		// says: see redisconn.go.
		t, err := newRedisClient(cfg, poolSize)
		if err != nil {
			return nil, err
		}
		target, d.rdb = t, t.client
		closers = append(closers, func() { _ = d.rdb.Close() })
	}
	if traced {
		if err := tracing.InstrumentRedis(d.rdb); err != nil {
			d.close()
			return nil, fmt.Errorf("trace redis: %w", err)
		}
	}
	if target != nil {
		if err := target.ping(pctx); err != nil {
			d.close()
			return nil, err
		}
	}
	e, err := engine.New(engine.Config{Client: d.rdb, Prefix: cfg.RedisPrefix, Partitions: cfg.Partitions, Logger: log.Named("engine"),
		TransferRetention: cfg.TransferRetention})
	if err != nil {
		d.close()
		return nil, err
	}
	d.e = e
	if err := e.LoadScripts(pctx); err != nil {
		d.close()
		if target != nil {
			if h := target.hint(err); h != nil {
				err = h // a user without the right to load scripts
			}
		}
		return nil, err
	}
	if !cfg.embedded() {
		for _, w := range e.CheckRedisConfig(pctx) {
			log.Warn(w)
		}
	}
	if !cfg.ledgerOff() {
		pcfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("INVENTORY_DATABASE_URL: %w", err)
		}
		if traced {
			tracing.InstrumentPool(pcfg)
		}
		pool, err := pgxpool.NewWithConfig(ctx, pcfg)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("INVENTORY_DATABASE_URL: %w", err)
		}
		closers = append(closers, pool.Close)
		if err := pool.Ping(pctx); err != nil {
			d.close()
			return nil, fmt.Errorf("postgresql unreachable (set INVENTORY_DATABASE_URL=off to run without the ledger): %w", err)
		}
		d.pool = pool
	}
	return d, nil
}

// openPool opens and pings a PostgreSQL pool.
func openPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("INVENTORY_DATABASE_URL: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgresql unreachable: %w", err)
	}
	return pool, nil
}
