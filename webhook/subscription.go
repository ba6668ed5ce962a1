package webhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shelfline/inventory/engine"
)

// Event names a subscription may ask for (DESIGN §13).
const (
	// NameStockChanged fires on every event.
	NameStockChanged = "stock_changed"
	// NameLowStock fires when available crosses from above the item's
	// reorder point to at or below it.
	NameLowStock = "low_stock"
	// NameOutOfStock fires when available goes from above 0 to 0.
	NameOutOfStock = "out_of_stock"
	// NameBackInStock fires when available goes from 0 to above 0.
	NameBackInStock = "back_in_stock"
	// NameTransfer fires on every change of a transfer's status.
	NameTransfer = "transfer"
)

// KnownNames lists every event name, in the order the API documents them.
var KnownNames = []string{NameLowStock, NameOutOfStock, NameBackInStock, NameStockChanged, NameTransfer}

// MinSecretLen is the shortest secret a subscription may bring, in bytes.
const MinSecretLen = 16

// maxSecretLen bounds a secret, in bytes.
const maxSecretLen = 1024

// ErrNotFound: no subscription has the id.
var ErrNotFound = errors.New("webhook not found")

// Subscription is one endpoint's subscription.
type Subscription struct {
	ID     string   `json:"id"`
	URL    string   `json:"url"`
	Events []string `json:"events"`
	// Stores limits the subscription to these stores; nil: every store.
	Stores []string `json:"stores"`
	// Secret signs the deliveries. Only the answer to the creation shows
	// it; reads leave it out.
	Secret    string    `json:"secret,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// wants reports whether s subscribed to name for store.
func (s *Subscription) wants(name, store string) bool {
	return slices.Contains(s.Events, name) && (s.Stores == nil || slices.Contains(s.Stores, store))
}

// NewSubscription is a request to subscribe.
type NewSubscription struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
	// Stores, when not empty, limits the subscription to these stores.
	Stores []string `json:"stores"`
	// Secret signs the deliveries; one is made when it is empty.
	Secret string `json:"secret"`
}

// Delivery is one event's delivery to one endpoint, as its log shows it.
type Delivery struct {
	EventID string `json:"event_id"`
	Type    string `json:"type"`
	Store   string `json:"store"`
	SKU     string `json:"sku"`
	Version int64  `json:"version"`
	// Status is pending, delivered or failed.
	Status string `json:"status"`
	// StatusCode is the last attempt's HTTP status; nil before the first
	// attempt, or when the last one got no answer.
	StatusCode    *int       `json:"status_code"`
	Attempts      int        `json:"attempts"`
	LastError     string     `json:"last_error"`
	CreatedAt     time.Time  `json:"created_at"`
	LastAttemptAt *time.Time `json:"last_attempt_at"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	DeliveredAt   *time.Time `json:"delivered_at"`
}

// Delivery statuses.
const (
	StatusPending   = "pending"
	StatusDelivered = "delivered"
	StatusFailed    = "failed"
)

// StoreConfig configures a Store.
type StoreConfig struct {
	// AllowPrivate accepts URLs whose host is a loopback, private,
	// link-local or unspecified address (INVENTORY_WEBHOOK_ALLOW_PRIVATE).
	// Defaults to false: such targets are refused.
	AllowPrivate bool
	// Resolver resolves a URL's host name to check its addresses. Defaults
	// to net.DefaultResolver.
	Resolver *net.Resolver
}

// Store keeps subscriptions and the delivery log in PostgreSQL. It is safe
// for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	cfg  StoreConfig
}

// NewStore returns a Store over pool, whose schema must be migrated
// (persist.Migrate).
func NewStore(pool *pgxpool.Pool, cfg StoreConfig) *Store {
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	return &Store{pool: pool, cfg: cfg}
}

// Validate checks a request to subscribe and returns it normalised: a
// *engine.ValidationError naming the field when it is invalid (a URL that
// is not http(s), or whose host is private while AllowPrivate is off; an
// empty or unknown event name; a store that is not an id; a secret shorter
// than MinSecretLen bytes). It stores nothing.
func (s *Store) Validate(ctx context.Context, n NewSubscription) (NewSubscription, error) {
	u, err := url.Parse(n.URL)
	switch {
	case n.URL == "":
		return n, invalid("url", "is required")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "":
		return n, invalid("url", "must be an absolute http or https URL")
	case len(n.URL) > 2048:
		return n, invalid("url", "at most 2048 characters")
	}
	if !s.cfg.AllowPrivate {
		if err := s.checkHost(ctx, u.Hostname()); err != nil {
			return n, err
		}
	}
	if len(n.Events) == 0 {
		return n, invalid("events", "must name at least one event")
	}
	var events []string
	for _, e := range n.Events {
		if !slices.Contains(KnownNames, e) {
			return n, invalid("events", "unknown event %q (known: %s)", e, strings.Join(KnownNames, ", "))
		}
		if !slices.Contains(events, e) {
			events = append(events, e)
		}
	}
	n.Events = events
	var stores []string
	for _, st := range n.Stores {
		if !engine.ValidID(st) {
			return n, invalid("stores", "%q is not a store id", st)
		}
		if !slices.Contains(stores, st) {
			stores = append(stores, st)
		}
	}
	n.Stores = stores // nil when empty: every store
	switch {
	case n.Secret != "" && len(n.Secret) < MinSecretLen:
		return n, invalid("secret", "must be at least %d bytes", MinSecretLen)
	case len(n.Secret) > maxSecretLen:
		return n, invalid("secret", "at most %d bytes", maxSecretLen)
	}
	return n, nil
}

// checkHost refuses a host that is, or resolves to, an address that is not
// public. A name that does not resolve now passes: the sender's dialer
// checks the address it connects to anyway (DNS may change).
func (s *Store) checkHost(ctx context.Context, host string) error {
	lh := strings.ToLower(strings.TrimSuffix(host, "."))
	if lh == "localhost" || strings.HasSuffix(lh, ".localhost") {
		return invalid("url", "targets a loopback host; set INVENTORY_WEBHOOK_ALLOW_PRIVATE=true to allow it")
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !Public(a) {
			return invalid("url", "targets a loopback, private or link-local address; set INVENTORY_WEBHOOK_ALLOW_PRIVATE=true to allow it")
		}
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addrs, err := s.cfg.Resolver.LookupNetIP(rctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if !Public(a) {
			return invalid("url", "resolves to a loopback, private or link-local address; set INVENTORY_WEBHOOK_ALLOW_PRIVATE=true to allow it")
		}
	}
	return nil
}

// Public reports whether a is an address a webhook may target while
// private targets are refused: not loopback, private, link-local,
// multicast or unspecified.
func Public(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && !a.IsLoopback() && !a.IsPrivate() && !a.IsLinkLocalUnicast() &&
		!a.IsLinkLocalMulticast() && !a.IsInterfaceLocalMulticast() && !a.IsMulticast() && !a.IsUnspecified()
}

func invalid(field, format string, a ...any) error {
	return &engine.ValidationError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// Create validates n (see Validate) and stores the subscription, making a
// secret when n has none. The answer carries the secret.
func (s *Store) Create(ctx context.Context, n NewSubscription) (Subscription, error) {
	n, err := s.Validate(ctx, n)
	if err != nil {
		return Subscription{}, err
	}
	if n.Secret == "" {
		n.Secret = randomHex(32)
	}
	sub := Subscription{ID: "wh_" + randomHex(12), URL: n.URL, Events: n.Events, Stores: n.Stores, Secret: n.Secret}
	err = s.pool.QueryRow(ctx, sqlCreate, sub.ID, sub.URL, sub.Events, sub.Stores, sub.Secret).Scan(&sub.CreatedAt)
	if err != nil {
		return Subscription{}, fmt.Errorf("create webhook: %w", err)
	}
	sub.CreatedAt = sub.CreatedAt.UTC()
	return sub, nil
}

const sqlCreate = `INSERT INTO webhooks (id, url, events, stores, secret) VALUES ($1, $2, $3, $4, $5) RETURNING created_at`

const sqlSelect = `SELECT id, url, events, stores, secret, created_at FROM webhooks`

func scanSub(row pgx.Row) (Subscription, error) {
	var sub Subscription
	err := row.Scan(&sub.ID, &sub.URL, &sub.Events, &sub.Stores, &sub.Secret, &sub.CreatedAt)
	sub.CreatedAt = sub.CreatedAt.UTC()
	return sub, err
}

// List returns every subscription, oldest first, without their secrets.
func (s *Store) List(ctx context.Context) ([]Subscription, error) {
	subs, err := s.all(ctx)
	for i := range subs {
		subs[i].Secret = ""
	}
	return subs, err
}

// all returns every subscription with its secret, oldest first.
// none reports whether no webhook exists.
func (s *Store) none(ctx context.Context) (bool, error) {
	var none bool
	if err := s.pool.QueryRow(ctx, `SELECT NOT EXISTS (SELECT 1 FROM webhooks)`).Scan(&none); err != nil {
		return false, fmt.Errorf("count webhooks: %w", err)
	}
	return none, nil
}

func (s *Store) all(ctx context.Context) ([]Subscription, error) {
	rows, err := s.pool.Query(ctx, sqlSelect+` ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	subs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Subscription, error) { return scanSub(r) })
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	if subs == nil {
		subs = []Subscription{}
	}
	return subs, nil
}

// Get returns one subscription without its secret. Errors: ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Subscription, error) {
	sub, err := scanSub(s.pool.QueryRow(ctx, sqlSelect+` WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Subscription{}, fmt.Errorf("webhook %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("get webhook %s: %w", id, err)
	}
	sub.Secret = ""
	return sub, nil
}

// Delete removes a subscription and its delivery log; its pending
// deliveries are not sent. Errors: ErrNotFound.
func (s *Store) Delete(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhooks WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete webhook %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("webhook %s: %w", id, ErrNotFound)
	}
	return nil
}

// Deliveries returns up to limit of a subscription's deliveries, newest
// first. Errors: ErrNotFound.
func (s *Store) Deliveries(ctx context.Context, id string, limit int) ([]Delivery, error) {
	if _, err := s.Get(ctx, id); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT event_id, event_type, store_id, sku, version, status, status_code, attempts, last_error,
		created_at, last_attempt_at, CASE WHEN status = 'pending' THEN next_attempt_at END, delivered_at
		FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY seq DESC LIMIT $2`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("deliveries of webhook %s: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Delivery, error) {
		var d Delivery
		err := r.Scan(&d.EventID, &d.Type, &d.Store, &d.SKU, &d.Version, &d.Status, &d.StatusCode, &d.Attempts, &d.LastError,
			&d.CreatedAt, &d.LastAttemptAt, &d.NextAttemptAt, &d.DeliveredAt)
		d.CreatedAt = d.CreatedAt.UTC()
		for _, t := range []*time.Time{d.LastAttemptAt, d.NextAttemptAt, d.DeliveredAt} {
			if t != nil {
				*t = t.UTC()
			}
		}
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("deliveries of webhook %s: %w", id, err)
	}
	if out == nil {
		out = []Delivery{}
	}
	return out, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// Enqueue writes a delivery for each of events' names (Names) to every
// subscription that wants it and was made before the event happened, in
// the order of events (an item's in version order). Deliveries already
// written under the same event id are left as they are, so writing an
// event twice delivers it once. The webhook workers call it with the
// events they read from the streams; the reconciler with the changes its
// repairs made that no stream event announced (persist.ReconcilerConfig).
func (s *Store) Enqueue(ctx context.Context, events []engine.Event) error {
	_, err := s.enqueue(ctx, events)
	return err
}

// enqueue is Enqueue, returning the subscription of each row written.
func (s *Store) enqueue(ctx context.Context, events []engine.Event) ([]string, error) {
	if len(events) == 0 {
		return nil, nil
	}
	subs, err := s.all(ctx)
	if err != nil || len(subs) == 0 {
		return nil, err
	}
	var ws, es, ns, ss, ks []string
	var vs []int64
	var bs [][]byte
	for i := range events {
		ev := &events[i]
		for _, name := range Names(ev) {
			var body []byte
			for j := range subs {
				sub := &subs[j]
				if !sub.wants(name, ev.Store) || ev.Time.Before(sub.CreatedAt.Truncate(time.Millisecond)) {
					continue
				}
				if body == nil {
					if body, err = json.Marshal(payload(ev, name)); err != nil {
						return nil, err
					}
				}
				ws, es, ns = append(ws, sub.ID), append(es, EventID(ev, name)), append(ns, name)
				ss, ks = append(ss, ev.Store), append(ks, ev.SKU)
				vs, bs = append(vs, ev.Version), append(bs, body)
			}
		}
	}
	if len(ws) == 0 {
		return nil, nil
	}
	// A subscription deleted meanwhile has no row to reference: the join
	// leaves its rows out.
	_, err = s.pool.Exec(ctx, `INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, store_id, sku, version, body)
		SELECT u.w, u.e, u.n, u.s, u.k, u.v, u.b
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bytea[])
			WITH ORDINALITY AS u(w, e, n, s, k, v, b, o)
		JOIN webhooks h ON h.id = u.w
		ORDER BY u.o
		ON CONFLICT (webhook_id, event_id) DO NOTHING`, ws, es, ns, ss, ks, vs, bs)
	if err != nil {
		return nil, fmt.Errorf("queue %d deliveries: %w", len(ws), err)
	}
	return ws, nil
}
