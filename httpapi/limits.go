package httpapi

import (
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
)

// limitInFlight answers 503 with Retry-After when MaxInFlight requests are
// already being served.
func (s *Server) limitInFlight(c *fiber.Ctx) error {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	if n > int64(s.cfg.MaxInFlight) {
		s.m.shed.WithLabelValues("in_flight").Inc()
		return unavailable("too many requests in flight; retry shortly")
	}
	return c.Next()
}

// rateLimit answers 429 with Retry-After when the caller's token is over its
// rate.
func (s *Server) rateLimit(c *fiber.Ctx) error {
	if wait, ok := s.limiter.allow(callerOf(c).principal); !ok {
		s.m.shed.WithLabelValues("rate").Inc()
		p := problem(http.StatusTooManyRequests, "rate-limited", "this token is over its request rate; slow down")
		p.RetryAfter = int(math.Ceil(wait.Seconds()))
		if p.RetryAfter < 1 {
			p.RetryAfter = 1
		}
		return p
	}
	return c.Next()
}

// rateLimiter is a token bucket per principal.
type rateLimiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate float64, burst int, now func() time.Time) *rateLimiter {
	return &rateLimiter{rate: rate, burst: float64(burst), now: now, buckets: map[string]*bucket{}}
}

// allow takes one token for principal, or reports how long until one is
// available.
func (l *rateLimiter) allow(principal string) (time.Duration, bool) {
	if l.rate < 0 {
		return 0, true
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[principal]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[principal] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / l.rate * float64(time.Second)), false
}
