package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Finding is a finding of the conflict inbox (GET /v1/admin/findings): an
// oversold item after a fork, a corruption or a ledger gap, which a person
// resolves with a correcting adjustment or dismisses, with a note.
type Finding struct {
	ID      int64  `json:"id"`
	RunID   *int64 `json:"run_id"`
	Kind    string `json:"kind"`
	Store   string `json:"store"`
	SKU     string `json:"sku"`
	Version int64  `json:"version"`
	// Before and After are the item's states the finding recorded.
	Before  json.RawMessage `json:"before"`
	After   json.RawMessage `json:"after"`
	Action  string          `json:"action"`
	Detail  string          `json:"detail"`
	FoundAt time.Time       `json:"found_at"`
	Reports int64           `json:"reports"`
	// Status is "open", "resolved" or "dismissed".
	Status     string      `json:"status"`
	Resolution *Resolution `json:"resolution"`
}

// Resolution is what a person decided about a finding.
type Resolution struct {
	Outcome      string    `json:"outcome"`
	Note         string    `json:"note"`
	Delta        *int64    `json:"delta"`
	EventVersion *int64    `json:"event_version"`
	Principal    string    `json:"principal"`
	ResolvedAt   time.Time `json:"resolved_at"`
}

// Overview is GET /v1/admin/operations: the partitions (readiness,
// persister lag, dead letters), the newest reconciliation runs, the open
// findings and the process's rebuilds.
type Overview struct {
	Partitions []struct {
		Partition    int        `json:"partition"`
		Ready        bool       `json:"ready"`
		ReadySince   *time.Time `json:"ready_since"`
		Lag          int64      `json:"lag"`
		StreamLength int64      `json:"stream_length"`
		DeadLetters  int64      `json:"dead_letters"`
	} `json:"partitions"`
	DeadLetters []struct {
		Partition int    `json:"partition"`
		EntryID   string `json:"entry_id"`
		Error     string `json:"error"`
		Consumer  string `json:"consumer"`
	} `json:"dead_letters"`
	Runs []struct {
		ID           int64      `json:"id"`
		Mode         string     `json:"mode"`
		StartedAt    time.Time  `json:"started_at"`
		FinishedAt   *time.Time `json:"finished_at"`
		ItemsChecked int64      `json:"items_checked"`
		Lagging      int64      `json:"lagging"`
		Findings     int64      `json:"findings"`
		Error        string     `json:"error"`
	} `json:"runs"`
	OpenFindings int64           `json:"open_findings"`
	Rebuilds     json.RawMessage `json:"rebuilds"`
}

// Findings lists the inbox (admin only): status "open" (the default when
// empty), "closed" or "all"; limit 1..1000, 0 for the server's default.
func (c *Client) Findings(ctx context.Context, status string, limit int) ([]Finding, error) {
	q := url.Values{}
	if status != "" {
		q.Set("status", status)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	r, err := c.call(ctx, http.MethodGet, "/v1/admin/findings", q, nil, nil)
	if err != nil {
		return nil, err
	}
	var out struct {
		Findings []Finding `json:"findings"`
	}
	if err := decode(r, &out); err != nil {
		return nil, err
	}
	return out.Findings, nil
}

// Finding reads one finding of the inbox (admin only).
func (c *Client) Finding(ctx context.Context, id int64) (*Finding, error) {
	return c.finding(ctx, http.MethodGet, findingPath(id), nil, nil)
}

// ResolveFinding resolves a finding with a correcting adjustment of its
// item's on_hand by delta (non-zero) and a note (admin only). The answer is
// the finding, now resolved; 409 when it was decided already.
func (c *Client) ResolveFinding(ctx context.Context, id, delta int64, note string, opts ...CallOption) (*Finding, error) {
	return c.finding(ctx, http.MethodPost, findingPath(id)+"/resolve", map[string]any{"delta": delta, "note": note}, opts)
}

// DismissFinding dismisses a finding with a note, changing no stock (admin
// only).
func (c *Client) DismissFinding(ctx context.Context, id int64, note string, opts ...CallOption) (*Finding, error) {
	return c.finding(ctx, http.MethodPost, findingPath(id)+"/dismiss", map[string]any{"note": note}, opts)
}

// Operations reads the operations overview (admin only).
func (c *Client) Operations(ctx context.Context) (*Overview, error) {
	r, err := c.call(ctx, http.MethodGet, "/v1/admin/operations", nil, nil, nil)
	if err != nil {
		return nil, err
	}
	var out Overview
	if err := decode(r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// LowStock lists a store's items at or below their reorder point, from the
// ledger; limit 1..1000, 0 for the server's default.
func (c *Client) LowStock(ctx context.Context, store string, limit int) ([]Item, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	r, err := c.call(ctx, http.MethodGet, "/v1/stores/"+seg(store)+"/low-stock", q, nil, nil)
	if err != nil {
		return nil, err
	}
	var out struct {
		Items []Item `json:"items"`
	}
	if err := decode(r, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

func findingPath(id int64) string { return "/v1/admin/findings/" + strconv.FormatInt(id, 10) }

func (c *Client) finding(ctx context.Context, method, path string, in any, opts []CallOption) (*Finding, error) {
	r, err := c.call(ctx, method, path, nil, in, opts)
	if err != nil {
		return nil, err
	}
	var f Finding
	if err := decode(r, &f); err != nil {
		return nil, err
	}
	return &f, nil
}
