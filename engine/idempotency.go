package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Idempotency lives in one layer, here. A write with a client key runs under
// that key as its operation id; the script that applies it stores its result
// under the operation id in the store's partition (idemKey), and a retry with
// the same key and fingerprint gets that result again (Replayed) without a
// change. Callers render their response from the result, so a replay answers
// exactly what the first call answered.
//
// That record lives in the partition of the store the request touches, so it
// cannot see the same key reused for a request on another store. A claim
// closes the gap: before its script runs, a keyed request records its
// fingerprint under (principal, key) in a partition of its own (claimKey),
// with SET NX GET, one round trip: a key taken by another fingerprint is
// ErrIdempotencyMismatch wherever the first request went. A request refused
// with nothing changed removes its claim, so its retry is evaluated afresh. A
// keyed write costs two round trips: the claim and the script.
//
// A bulk request claims its key once; each line runs under an operation id
// derived from it (LineOpSeparator) and records its refusal as well as its
// success, so a retry of the whole request answers exactly as the first did.
//
// After Redis loses its data, the rebuild restores from the ledger a record
// for every keyed request of the last IdempotencyTTL; a retry then gets
// ErrAlreadyApplied and changes nothing.

// claim takes op's client key for fingerprint fp. repeat is true when the
// key was already taken by a request with the same fingerprint (a retry, or
// the same request in flight): the operation record decides what it gets.
// A key taken by another fingerprint is ErrIdempotencyMismatch.
func (e *Engine) claim(ctx context.Context, principal, key, fp string) (repeat bool, err error) {
	prev, taken, err := e.takeClaim(ctx, principal, key, fp)
	switch {
	case err != nil || !taken:
		return false, err
	case prev != fp:
		return false, ErrIdempotencyMismatch
	}
	return true, nil
}

// takeClaim sets the key's claim to fp unless it is taken (SET NX GET, one
// round trip); taken reports that it was, and prev is its value.
func (e *Engine) takeClaim(ctx context.Context, principal, key, fp string) (prev string, taken bool, err error) {
	prev, err = e.rdb.SetArgs(ctx, e.claimKey(principal, key), fp,
		redis.SetArgs{Mode: "NX", Get: true, TTL: e.cfg.IdempotencyTTL}).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("claim idempotency key: %w", interpretError(err))
	}
	return prev, true, nil
}

// unclaim gives back a claim this request took, unless another request
// holds the key by now.
func (e *Engine) unclaim(principal, key, fp string) {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.GroupTimeout)
	defer cancel()
	if err := e.compareAndDelete(ctx, e.claimKey(principal, key), fp); err != nil {
		// The key stays taken for the same request: its retry reaches the
		// script, which evaluates it afresh (a refusal stored nothing).
		e.log.Warn("give back idempotency claim", zap.Error(err))
	}
}

// refusedUnchanged reports whether err is a refusal after which nothing was
// changed and nothing recorded, so a claim can be given back. A transport
// error is not: the script may have run.
func refusedUnchanged(err error) bool {
	var ve *ValidationError
	switch {
	case errors.Is(err, ErrIdempotencyMismatch), errors.Is(err, ErrAlreadyApplied):
		return false
	case errors.As(err, &ve), errors.Is(err, ErrPartitionNotReady), errors.Is(err, ErrBackpressure), errors.Is(err, ErrRedisFull):
		return true
	}
	return isDomain(err)
}

// compareAndDelete deletes key while it holds val.
func (e *Engine) compareAndDelete(ctx context.Context, key, val string) error {
	return e.scripts.Unlock.Run(ctx, e.rdb, []string{key}, val).Err()
}

// A caller's operation that is not a stock write (an admin's reconcile run)
// keeps its whole response under the key's claim: the claim holds
// "<fingerprint>\n<response>" once the operation is done.

// ClaimResponse takes op's client key for an operation that is not a stock
// write. It returns the response kept by an earlier request with the same
// fingerprint (nil when there is none yet: the caller runs the operation and
// then calls KeepResponse, or GiveBack when it failed), or
// ErrIdempotencyMismatch when the key belongs to another request.
func (e *Engine) ClaimResponse(ctx context.Context, op Op) ([]byte, error) {
	fp := claimFingerprint(op)
	prev, taken, err := e.takeClaim(ctx, op.Principal, op.IdempotencyKey, fp)
	switch {
	case err != nil:
		return nil, err
	case !taken, prev == fp:
		return nil, nil // new, or the same request in flight or failed
	case strings.HasPrefix(prev, fp+"\n"):
		return []byte(prev[len(fp)+1:]), nil
	}
	return nil, ErrIdempotencyMismatch
}

// KeepResponse keeps resp under op's claim (see ClaimResponse).
func (e *Engine) KeepResponse(ctx context.Context, op Op, resp []byte) error {
	fp := claimFingerprint(op)
	err := e.rdb.Set(ctx, e.claimKey(op.Principal, op.IdempotencyKey), fp+"\n"+string(resp), e.cfg.IdempotencyTTL).Err()
	if err != nil {
		return fmt.Errorf("keep response: %w", err)
	}
	return nil
}

// GiveBack removes op's claim after its operation failed (see
// ClaimResponse), unless another request holds the key by now.
func (e *Engine) GiveBack(op Op) { e.unclaim(op.Principal, op.IdempotencyKey, claimFingerprint(op)) }

func claimFingerprint(op Op) string {
	sum := sha256.Sum256([]byte("response\x00" + op.Fingerprint))
	return hex.EncodeToString(sum[:16])
}
