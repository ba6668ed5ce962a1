// Package engine is the hot path of the inventory: every stock operation is
// one atomic Lua script in Redis that validates, dedupes by operation id,
// changes the items and appends one event per changed item to the partition's
// stream.
//
// An Engine is safe for concurrent use by many goroutines and many processes
// sharing one Redis or Redis Cluster.
package engine

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/shelfline/inventory/luascripts"
)

var (
	idRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	prefixRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	resIDRE  = regexp.MustCompile(`^([0-9]{1,5})-[0-9a-f]{32}$`)
)

// Limits of the data model (DESIGN §2).
const (
	MaxQty       = 1_000_000_000
	MaxOnHand    = 1_000_000_000_000
	MaxLines     = 100
	MaxReasonLen = 256
	MaxKeyLen    = 255
	MaxTTL       = 24 * time.Hour
	DefaultTTL   = 15 * time.Minute
)

// ValidID reports whether s is a valid store, SKU or customer id.
func ValidID(s string) bool { return idRE.MatchString(s) }

// Engine runs the stock operations. Construct it with New.
type Engine struct {
	cfg      Config
	rdb      redis.UniversalClient
	scripts  *luascripts.Set
	log      *zap.Logger
	batchers []*batcher
}

// New returns an Engine for cfg. It does not talk to Redis; call Init or
// LoadScripts before serving.
func New(cfg Config) (*Engine, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s, err := luascripts.New()
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, rdb: cfg.Client, scripts: s, log: cfg.Logger}
	e.batchers = make([]*batcher, cfg.Partitions)
	for p := range e.batchers {
		e.batchers[p] = &batcher{e: e, p: p}
	}
	return e, nil
}

// Partitions returns the number of partitions.
func (e *Engine) Partitions() int { return e.cfg.Partitions }

// Prefix returns the key prefix.
func (e *Engine) Prefix() string { return e.cfg.Prefix }

// Client returns the Redis client the engine uses.
func (e *Engine) Client() redis.UniversalClient { return e.rdb }

// Scripts returns the engine's scripts.
func (e *Engine) Scripts() *luascripts.Set { return e.scripts }

// Now returns the engine clock's current time.
func (e *Engine) Now() time.Time { return e.cfg.Clock() }

// Partition returns the partition of a store: crc32(store) % Partitions.
func (e *Engine) Partition(store string) int {
	return int(crc32.ChecksumIEEE([]byte(store)) % uint32(e.cfg.Partitions))
}

// KeyBase returns the prefix of every key of partition p, "<prefix>:{p}:".
func (e *Engine) KeyBase(p int) string {
	return e.cfg.Prefix + ":{" + strconv.Itoa(p) + "}:"
}

// StreamKey returns the key of partition p's event stream.
func (e *Engine) StreamKey(p int) string { return e.KeyBase(p) + "events" }

// ReadyKey returns the key of partition p's readiness marker.
func (e *Engine) ReadyKey(p int) string { return e.KeyBase(p) + "ready" }

// StoreKey returns the key of the hash holding a store's items: field SKU,
// value the packed item (see ParsePackedItem).
func (e *Engine) StoreKey(store string) string {
	return e.KeyBase(e.Partition(store)) + "st:" + store
}

// LoadScripts loads every script into Redis (every master of a cluster).
func (e *Engine) LoadScripts(ctx context.Context) error {
	return e.scripts.Load(ctx, e.rdb)
}

// Init loads the scripts and marks every partition that has no readiness
// marker ready. Use it only for a deployment without a ledger: with a ledger,
// a missing marker means Redis lost data and the partition must be rebuilt
// from PostgreSQL first.
func (e *Engine) Init(ctx context.Context) error {
	if err := e.LoadScripts(ctx); err != nil {
		return err
	}
	for p := 0; p < e.cfg.Partitions; p++ {
		if err := e.MarkReady(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// MarkReady sets partition p's readiness marker, so its scripts accept writes.
func (e *Engine) MarkReady(ctx context.Context, p int) error {
	if err := e.rdb.Set(ctx, e.ReadyKey(p), strconv.FormatInt(e.Now().UnixMilli(), 10), 0).Err(); err != nil {
		return fmt.Errorf("mark partition %d ready: %w", p, err)
	}
	return nil
}

// PartitionReady reports whether partition p has its readiness marker.
func (e *Engine) PartitionReady(ctx context.Context, p int) (bool, error) {
	n, err := e.rdb.Exists(ctx, e.ReadyKey(p)).Result()
	if err != nil {
		return false, fmt.Errorf("partition %d ready: %w", p, err)
	}
	return n == 1, nil
}

// baseArgs returns ARGV[1..5] of every script (see prelude.lua).
func (e *Engine) baseArgs(extra ...any) []any {
	args := make([]any, 0, 5+len(extra))
	args = append(args,
		e.Now().UnixMilli(),
		e.cfg.IdempotencyTTL.Milliseconds(),
		e.cfg.OpTTL.Milliseconds(),
		e.cfg.StreamHighWatermark,
		e.cfg.ReservationRetention.Milliseconds(),
	)
	return append(args, extra...)
}

// maxAttempts bounds the engine's own retries of a script whose reply was
// lost. Writes are safe to retry: the script dedupes on the operation id.
const maxAttempts = 3

// run runs script sc on partition p, falling back to EVAL on NOSCRIPT, and
// retrying a call whose reply was lost in transport.
func (e *Engine) run(ctx context.Context, sc *redis.Script, p int, extra ...any) (any, error) {
	keys := []string{e.StreamKey(p)}
	var err error
	for attempt := 1; ; attempt++ {
		var res any
		res, err = sc.Run(ctx, e.rdb, keys, e.baseArgs(extra...)...).Result()
		if err == nil {
			return res, nil
		}
		e.refreshTopology(err)
		if !retryable(err) || attempt >= maxAttempts || ctx.Err() != nil {
			break
		}
		e.log.Debug("retrying script after transport error", zap.Int(logPartition, p), zap.Error(err))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt) * 20 * time.Millisecond):
		}
	}
	return nil, interpretError(err)
}

const (
	logPartition = "partition"
	logError     = "error"
)

// retryable reports whether err is a transport failure after which the
// script may or may not have run, or a node that is loading or failing over.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrClosed) {
		return false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		for _, p := range []string{"LOADING", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "READONLY"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false
	}
	return true // io.EOF, a net.Error, a pool timeout: the reply was lost
}

// refreshTopology asks a cluster client to reload its slot map after an
// error that is not a Redis reply (connection refused, reset or timed out).
// go-redis reloads the map by itself only on MOVED/ASK, or every
// ClusterStateReloadInterval (60s by default); a master that died answers
// nothing, so without this its slots keep pointing at it for up to a minute
// after its replica has taken over. The reload is asynchronous and coalesced
// by go-redis: calling this on every such error is cheap.
func (e *Engine) refreshTopology(err error) {
	cc, ok := e.rdb.(*redis.ClusterClient)
	if !ok {
		return
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return
	}
	cc.ReloadState(context.Background())
}

// Op carries what identifies a write: the client's idempotency key (scoped by
// principal), the principal, and the request fingerprint. The zero Op is a
// write without a client key; the engine generates an operation id.
type Op struct {
	// IdempotencyKey is the client's key, 1..255 printable ASCII, or empty.
	IdempotencyKey string
	// Principal is who asks (the token's name); keys are scoped by it.
	Principal string
	// Fingerprint identifies the request: the same key with another
	// fingerprint is ErrIdempotencyMismatch. Empty: the engine derives one
	// from the operation and its arguments.
	Fingerprint string
	// line, when positive, is the 1-based line of a bulk request made under
	// IdempotencyKey: the line runs under its own operation id.
	line int
}

// GeneratedOpPrefix starts every operation id the engine generates for a
// write without a client key, so the ledger tells them from client keys.
const GeneratedOpPrefix = "~g"

// ValidIdempotencyKey reports whether k is 1..255 printable ASCII.
func ValidIdempotencyKey(k string) bool {
	if len(k) < 1 || len(k) > MaxKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// wreq is the JSON request of a write script.
type wreq struct {
	O        string     `json:"o"`
	Store    string     `json:"store,omitempty"`
	SKU      string     `json:"sku,omitempty"`
	OnHand   *int64     `json:"oh,omitempty"`
	RP       *int64     `json:"rp,omitempty"`
	MPC      *int64     `json:"mpc,omitempty"`
	EV       *int64     `json:"ev,omitempty"`
	Delta    int64      `json:"delta,omitempty"`
	Lines    []wireLine `json:"lines,omitempty"`
	Customer string     `json:"customer,omitempty"`
	RID      string     `json:"rid,omitempty"`
	TTL      int64      `json:"ttl,omitempty"`
	Reason   string     `json:"reason,omitempty"`
	PR       string     `json:"pr,omitempty"`
	OpID     string     `json:"op,omitempty"`
	IDK      string     `json:"idk,omitempty"`
	FP       string     `json:"fp,omitempty"`
	Gen      bool       `json:"gen,omitempty"`
}

// wireLine encodes a line as [sku, qty].
type wireLine struct {
	SKU string
	Qty int64
}

func (l wireLine) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(l.SKU)
	if err != nil {
		return nil, err
	}
	return []byte("[" + string(b) + "," + strconv.FormatInt(l.Qty, 10) + "]"), nil
}

// identify fills the operation id, idempotency record key and fingerprint.
// A write without a client key gets a fresh random operation id; no one else
// can name it, so it needs no fingerprint.
func identify(r *wreq, op Op) error {
	r.PR = op.Principal
	if op.IdempotencyKey == "" {
		r.OpID = GeneratedOpPrefix + randomHex(16)
		r.Gen = true
		return nil
	}
	if !ValidIdempotencyKey(op.IdempotencyKey) {
		return invalid("Idempotency-Key", "must be 1..255 printable ASCII characters")
	}
	if op.Fingerprint == "" {
		c := *r
		c.PR = ""
		if c.O == "reserve" {
			c.RID = "" // generated per call, not part of the request
		}
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		r.FP = hex.EncodeToString(sum[:16])
	} else {
		sum := sha256.Sum256([]byte(op.Fingerprint))
		r.FP = hex.EncodeToString(sum[:16])
	}
	r.OpID = op.IdempotencyKey
	if op.line > 0 {
		r.OpID += LineOpSeparator + strconv.Itoa(op.line-1)
	}
	r.IDK = strconv.Itoa(len(op.Principal)) + ":" + op.Principal + ":" + r.OpID
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}

// write runs one write request on partition p and returns its reply.
func (e *Engine) write(ctx context.Context, p int, r *wreq, op Op) (*reply, error) {
	if err := identify(r, op); err != nil {
		return nil, err
	}
	b, err := jsonMarshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	var res any
	if e.cfg.DisableGroupCommit {
		res, err = e.run(ctx, e.scripts.Ops[r.O], p, string(b))
	} else {
		res, err = e.batcher(p).submit(ctx, string(b))
	}
	if err != nil {
		return nil, err
	}
	arr, ok := res.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: unexpected reply %T", r.O, res)
	}
	return &reply{a: arr}, nil
}

// jsonMarshal encodes a write request.
func jsonMarshal(r *wreq) ([]byte, error) { return json.Marshal(r) }
