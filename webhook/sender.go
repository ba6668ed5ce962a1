package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// sender posts the delivery rows of the endpoints. Each endpoint has its
// own loop (run), so one that is slow or dead holds only its own rows.
type sender struct {
	d      *Dispatcher
	client *http.Client
}

// errPrivateTarget: a delivery would connect to an address that is not
// public while AllowPrivate is off.
var errPrivateTarget = errors.New("target address is loopback, private or link-local (INVENTORY_WEBHOOK_ALLOW_PRIVATE is off)")

func newSender(d *Dispatcher) *sender {
	dialer := &net.Dialer{Timeout: d.cfg.Timeout, KeepAlive: 30 * time.Second}
	if !d.cfg.AllowPrivate {
		// The address connected to is checked, not the name: a name that
		// resolves to a private address later is refused too.
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !Public(ap.Addr()) {
				return errPrivateTarget
			}
			return nil
		}
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		MaxIdleConnsPerHost: d.cfg.Concurrency,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: d.cfg.Timeout,
	}
	return &sender{d: d, client: &http.Client{Transport: tr, Timeout: d.cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// claimed is a delivery row a sender leased.
type claimed struct {
	seq      int64
	eventID  string
	body     []byte
	attempts int
}

// sqlClaim leases up to $2 due rows of endpoint $1, at most one per item:
// the head of each item's queue (lowest version), so one item's deliveries
// go in version order; a head that waits for its retry holds its item's
// later rows back, and no other item's. The lease is checked again by the
// UPDATE, so two workers never send one row at once.
const sqlClaim = `
WITH heads AS (
	SELECT DISTINCT ON (store_id, sku) seq, next_attempt_at, leased_until
	FROM webhook_deliveries
	WHERE webhook_id = $1 AND status = 'pending'
	ORDER BY store_id, sku, version, seq
), due AS (
	SELECT seq FROM heads
	WHERE next_attempt_at <= now() AND (leased_until IS NULL OR leased_until < now())
	ORDER BY seq LIMIT $2
)
UPDATE webhook_deliveries d SET leased_until = now() + $3 * interval '1 microsecond'
FROM due
WHERE d.seq = due.seq AND d.status = 'pending' AND (d.leased_until IS NULL OR d.leased_until < now())
RETURNING d.seq, d.event_id, d.body, d.attempts`

// sqlResult records one attempt. $4: delivered; else the row waits $5
// microseconds for its next attempt, or fails when that would pass its
// MaxAge ($6 microseconds after it was written).
const sqlResult = `
UPDATE webhook_deliveries SET
	attempts = attempts + 1, status_code = $2, last_error = $3, last_attempt_at = now(), leased_until = NULL,
	status = CASE WHEN $4 THEN 'delivered'
		WHEN now() + $5 * interval '1 microsecond' > created_at + $6 * interval '1 microsecond' THEN 'failed'
		ELSE 'pending' END,
	next_attempt_at = now() + $5 * interval '1 microsecond',
	delivered_at = CASE WHEN $4 THEN now() END
WHERE seq = $1 AND status = 'pending'
RETURNING status`

// run sends endpoint sub's deliveries until ctx is done.
func (s *sender) run(ctx context.Context, sub Subscription, wake <-chan struct{}) {
	d := s.d
	log := d.log.With(zap.String(logWebhook, sub.ID))
	for ctx.Err() == nil {
		n, err := s.round(ctx, sub)
		if err != nil && ctx.Err() == nil {
			log.Warn("send deliveries", zap.Error(err))
		}
		if n > 0 && err == nil {
			continue // more may be due
		}
		t := time.NewTimer(d.cfg.Poll)
		select {
		case <-ctx.Done():
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// attempt is the result of one delivery attempt.
type attempt struct {
	seq     int64
	eventID string
	code    *int
	err     string
	ok      bool
}

// round leases the endpoint's due rows, sends them at once (they are of
// different items) and records the results. It returns how many it sent.
func (s *sender) round(ctx context.Context, sub Subscription) (int, error) {
	d := s.d
	rows, err := d.pool.Query(ctx, sqlClaim, sub.ID, d.cfg.Concurrency, d.cfg.Lease.Microseconds())
	if err != nil {
		return 0, fmt.Errorf("lease deliveries: %w", err)
	}
	batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (claimed, error) {
		var c claimed
		return c, r.Scan(&c.seq, &c.eventID, &c.body, &c.attempts)
	})
	if err != nil {
		return 0, fmt.Errorf("lease deliveries: %w", err)
	}
	if len(batch) == 0 {
		return 0, nil
	}
	results := make([]attempt, len(batch))
	var wg sync.WaitGroup
	for i, c := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.post(ctx, sub, c)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		// Stopping: the attempts' results may be cut short; the leases
		// run out and the rows are sent again (same ids).
		return 0, nil
	}
	// The results are recorded whatever the caller's context: an attempt
	// that was made is written down.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	b := &pgx.Batch{}
	for i, r := range results {
		var wait time.Duration
		if !r.ok {
			wait = d.backoff(batch[i].attempts + 1)
		}
		b.Queue(sqlResult, r.seq, r.code, r.err, r.ok, wait.Microseconds(), d.cfg.MaxAge.Microseconds())
	}
	br := d.pool.SendBatch(wctx, b)
	defer br.Close()
	for _, r := range results {
		var status string
		err := br.QueryRow().Scan(&status)
		if errors.Is(err, pgx.ErrNoRows) {
			continue // the subscription was deleted meanwhile
		}
		if err != nil {
			return len(results), fmt.Errorf("record attempt of %s: %w", r.eventID, err)
		}
		outcome := OutcomeRetry
		switch status {
		case StatusDelivered:
			outcome = OutcomeDelivered
		case StatusFailed:
			outcome = OutcomeFailed
			d.log.Warn("delivery failed for good", zap.String(logWebhook, sub.ID), zap.String(logEventID, r.eventID), zap.String("error", r.err))
		}
		d.count(sub.ID, outcome)
	}
	return len(results), br.Close()
}

// maxErrBody is how much of a refusing endpoint's answer the log keeps.
const maxErrBody = 256

// post makes one attempt of one delivery.
func (s *sender) post(ctx context.Context, sub Subscription, c claimed) attempt {
	a := attempt{seq: c.seq, eventID: c.eventID}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.URL, bytes.NewReader(c.body))
	if err != nil {
		a.err = err.Error()
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "inventory-webhooks/1")
	req.Header.Set(HeaderEventID, c.eventID)
	req.Header.Set(HeaderSignature, Sign(sub.Secret, time.Now(), c.body))
	resp, err := s.client.Do(req)
	if err != nil {
		a.err = err.Error()
		return a
	}
	defer resp.Body.Close()
	code := resp.StatusCode
	a.code = &code
	if code >= 200 && code < 300 {
		a.ok = true
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return a
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrBody))
	a.err = fmt.Sprintf("HTTP %d", code)
	if len(msg) > 0 {
		a.err += ": " + string(bytes.ToValidUTF8(msg, []byte("?")))
	}
	return a
}
