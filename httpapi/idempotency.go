package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shelfline/inventory/engine"
)

// The engine keeps its idempotency record in the partition of the store or
// reservation a request touches, so it cannot see a key reused on another
// path or store. The API therefore claims every client key itself first: a
// record, per principal and key, holding the request's fingerprint and, once
// the request has succeeded, its response. A replay answers from that record
// without calling the engine; a claim whose request failed is removed, so a
// refused request stores nothing. When a response was lost between the
// engine and the record (a crash), the retry reaches the engine, which
// replays its own record.

// stored is the response kept under an idempotency key.
type stored struct {
	FP     string `json:"fp"`
	Status int    `json:"status,omitempty"`
	ETag   string `json:"etag,omitempty"`
	Loc    string `json:"loc,omitempty"`
	Body   []byte `json:"body,omitempty"`
}

type idemStore struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
}

func (s *idemStore) key(principal, key string) string {
	sum := sha256.Sum256([]byte(principal + "\x00" + key))
	return s.prefix + ":hidem:" + hex.EncodeToString(sum[:])
}

// fingerprint identifies a request: method, path with query, and body.
func fingerprint(method, uri string, body []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n", method, uri)
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// claim records key for fp. It returns the stored response of an earlier
// identical request (nil when none is complete yet), or a 422 problem when
// the key was used for a different request, or owned=true when this request
// made the claim and must settle it with keep or drop.
func (s *idemStore) claim(ctx context.Context, principal, key, fp string) (prev *stored, owned bool, err error) {
	k := s.key(principal, key)
	claimVal, _ := json.Marshal(stored{FP: fp})
	ok, err := s.rdb.SetNX(ctx, k, claimVal, s.ttl).Result()
	if err != nil {
		return nil, false, fmt.Errorf("claim idempotency key: %w", err)
	}
	if ok {
		return nil, true, nil
	}
	raw, err := s.rdb.Get(ctx, k).Bytes()
	if errors.Is(err, redis.Nil) {
		// Dropped in between by a refused request: claim again once.
		ok, err = s.rdb.SetNX(ctx, k, claimVal, s.ttl).Result()
		if err != nil {
			return nil, false, fmt.Errorf("claim idempotency key: %w", err)
		}
		return nil, ok, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read idempotency key: %w", err)
	}
	var st stored
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, false, fmt.Errorf("decode idempotency record: %w", err)
	}
	if st.FP != fp {
		return nil, false, problem(http.StatusUnprocessableEntity, "idempotency-key-reused",
			"this Idempotency-Key was used before for a different request")
	}
	if st.Status == 0 {
		return nil, false, nil // in flight or lost: the engine dedupes
	}
	return &st, false, nil
}

// keep stores a successful response under the key.
func (s *idemStore) keep(ctx context.Context, principal, key string, st stored) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.rdb.Set(ctx, s.key(principal, key), b, s.ttl).Err()
}

var dropScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)

// drop removes this request's claim, unless another request completed it.
func (s *idemStore) drop(ctx context.Context, principal, key, fp string) error {
	claimVal, _ := json.Marshal(stored{FP: fp})
	return dropScript.Run(ctx, s.rdb, []string{s.key(principal, key)}, string(claimVal)).Err()
}

func validKeyHeader(k string) error {
	if !engine.ValidIdempotencyKey(k) {
		return badRequest("Idempotency-Key must be 1..255 printable ASCII characters").with("field", "Idempotency-Key")
	}
	return nil
}
