package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Webhook event names (see the README's Webhooks section).
const (
	WebhookLowStock     = "low_stock"
	WebhookOutOfStock   = "out_of_stock"
	WebhookBackInStock  = "back_in_stock"
	WebhookStockChanged = "stock_changed"
	WebhookTransfer     = "transfer"
)

// NewWebhook subscribes an endpoint. Stores, when not empty, limits it to
// those stores; Secret, when empty, is made by the server.
type NewWebhook struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
	Stores []string `json:"stores,omitempty"`
	Secret string   `json:"secret,omitempty"`
}

// Webhook is a subscription. Secret is set only in the answer to its
// creation.
type Webhook struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	Stores    []string  `json:"stores"`
	Secret    string    `json:"secret,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// WebhookDelivery is one event's delivery to a subscription's endpoint.
type WebhookDelivery struct {
	EventID string `json:"event_id"`
	Type    string `json:"type"`
	Store   string `json:"store"`
	SKU     string `json:"sku"`
	Version int64  `json:"version"`
	// Status is pending, delivered or failed.
	Status        string     `json:"status"`
	StatusCode    *int       `json:"status_code"`
	Attempts      int        `json:"attempts"`
	LastError     string     `json:"last_error"`
	CreatedAt     time.Time  `json:"created_at"`
	LastAttemptAt *time.Time `json:"last_attempt_at"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	DeliveredAt   *time.Time `json:"delivered_at"`
}

// CreateWebhook subscribes an endpoint (admin only). The answer carries the
// secret that signs the deliveries; no later read shows it.
func (c *Client) CreateWebhook(ctx context.Context, in NewWebhook, opts ...CallOption) (*Webhook, error) {
	r, err := c.call(ctx, http.MethodPost, "/v1/webhooks", nil, in, opts)
	if err != nil {
		return nil, err
	}
	var w Webhook
	return &w, decode(r, &w)
}

// Webhooks lists the subscriptions, oldest first (admin only).
func (c *Client) Webhooks(ctx context.Context) ([]Webhook, error) {
	r, err := c.call(ctx, http.MethodGet, "/v1/webhooks", nil, nil, nil)
	if err != nil {
		return nil, err
	}
	var out struct {
		Webhooks []Webhook `json:"webhooks"`
	}
	return out.Webhooks, decode(r, &out)
}

// GetWebhook reads one subscription (admin only); IsNotFound for an
// unknown id.
func (c *Client) GetWebhook(ctx context.Context, id string) (*Webhook, error) {
	r, err := c.call(ctx, http.MethodGet, "/v1/webhooks/"+seg(id), nil, nil, nil)
	if err != nil {
		return nil, err
	}
	var w Webhook
	return &w, decode(r, &w)
}

// DeleteWebhook deletes a subscription and its delivery log (admin only).
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	_, err := c.call(ctx, http.MethodDelete, "/v1/webhooks/"+seg(id), nil, nil, nil)
	return err
}

// WebhookDeliveries returns up to limit of a subscription's deliveries,
// newest first (limit 0: the server's default, 100).
func (c *Client) WebhookDeliveries(ctx context.Context, id string, limit int) ([]WebhookDelivery, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	r, err := c.call(ctx, http.MethodGet, "/v1/webhooks/"+seg(id)+"/deliveries", q, nil, nil)
	if err != nil {
		return nil, err
	}
	var out struct {
		Deliveries []WebhookDelivery `json:"deliveries"`
	}
	return out.Deliveries, decode(r, &out)
}
