package client

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Problem is an application/problem+json answer of the API (RFC 9457) as
// an error. Get one from any method's error with errors.As, or ask with
// IsNotFound, IsConflict and the other helpers.
type Problem struct {
	// Type is a URI whose last segment names the problem
	// ("https://shelfline.dev/problems/insufficient-stock"); see Slug.
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	// RequestID is the id of the request the problem answers.
	RequestID string `json:"request_id,omitempty"`
	// Field names the invalid member, header or parameter (400).
	Field string `json:"field,omitempty"`
	// Shortages lists the lines that lacked stock (409 insufficient-stock).
	Shortages []Shortage `json:"shortages,omitempty"`
	// CurrentVersion is the item's version (0: it does not exist) on a 412;
	// nil when absent.
	CurrentVersion *int64 `json:"current_version,omitempty"`
	// SKU, Limit and Already describe a 409 purchase-limit: the item, its
	// limit per customer and what the customer already has.
	SKU     string `json:"sku,omitempty"`
	Limit   int64  `json:"limit,omitempty"`
	Already int64  `json:"already,omitempty"`
	// ReservationStatus says why a reservation is not held (409).
	ReservationStatus string `json:"reservation_status,omitempty"`
	// RetryAfter is the response's Retry-After, if any (429, 503).
	RetryAfter time.Duration `json:"-"`
}

// Error says the status, the title and the detail.
func (p *Problem) Error() string {
	s := fmt.Sprintf("inventory API: %d %s", p.Status, p.Title)
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	return s
}

// Slug is the last path segment of Type ("insufficient-stock",
// "purchase-limit", "version-mismatch", …).
func (p *Problem) Slug() string {
	return p.Type[strings.LastIndexByte(p.Type, '/')+1:]
}

// ProblemOf returns the Problem in err's chain, or nil.
func ProblemOf(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	return nil
}

// StatusOf returns the HTTP status of the Problem in err's chain, or 0.
func StatusOf(err error) int {
	if p := ProblemOf(err); p != nil {
		return p.Status
	}
	return 0
}

// IsNotFound reports whether err is a 404 problem.
func IsNotFound(err error) bool { return StatusOf(err) == http.StatusNotFound }

// IsConflict reports whether err is a 409 problem: insufficient stock, a
// purchase limit, a reservation not held, …
func IsConflict(err error) bool { return StatusOf(err) == http.StatusConflict }

// IsPreconditionFailed reports whether err is a 412 problem (If-Match or
// If-None-Match failed); see Problem.CurrentVersion.
func IsPreconditionFailed(err error) bool { return StatusOf(err) == http.StatusPreconditionFailed }

// IsBadRequest reports whether err is a 400 problem; see Problem.Field.
func IsBadRequest(err error) bool { return StatusOf(err) == http.StatusBadRequest }

// IsUnauthorized reports whether err is a 401 or 403 problem.
func IsUnauthorized(err error) bool {
	s := StatusOf(err)
	return s == http.StatusUnauthorized || s == http.StatusForbidden
}

// IsUnavailable reports whether err is a 503 or 429 problem (after the
// client's retries ran out).
func IsUnavailable(err error) bool {
	s := StatusOf(err)
	return s == http.StatusServiceUnavailable || s == http.StatusTooManyRequests
}

// IsInsufficientStock reports whether err is a 409 insufficient-stock
// problem; see Problem.Shortages.
func IsInsufficientStock(err error) bool { return isSlug(err, "insufficient-stock") }

// IsPurchaseLimit reports whether err is a 409 purchase-limit problem; see
// Problem.SKU, Limit and Already.
func IsPurchaseLimit(err error) bool { return isSlug(err, "purchase-limit") }

// IsNotHeld reports whether err is a 409 reservation-not-held problem; see
// Problem.ReservationStatus.
func IsNotHeld(err error) bool { return isSlug(err, "reservation-not-held") }

func isSlug(err error, slug string) bool {
	p := ProblemOf(err)
	return p != nil && p.Slug() == slug
}
