package httpapi

import (
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
)

// limitInFlight answers 503 with Retry-After when MaxInFlight requests are
// already being served. It is what sheds real overload.
func (s *Server) limitInFlight(c *fiber.Ctx) error {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	if n > int64(s.cfg.MaxInFlight) {
		s.m.shed.WithLabelValues("in_flight").Inc()
		return unavailable("too many requests in flight; retry shortly")
	}
	return c.Next()
}

// rateLimit answers 429 with Retry-After when the caller's key is over its
// rate: its own (rate= in INVENTORY_API_KEYS) or the server's default. By
// default there is none.
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

// rateLimiter is a token bucket per principal. Every principal has the
// default rate unless it was given its own with limit.
type rateLimiter struct {
	def rateSpec
	now func() time.Time

	mu      sync.Mutex
	own     map[string]rateSpec
	buckets map[string]*bucket
}

// rateSpec is a bucket's refill rate per second and size. A rate of zero or
// less means no limit.
type rateSpec struct {
	rate, burst float64
}

// specFor returns the rate spec of rate and burst: burst zero is twice the
// rate, at least 1.
func specFor(rate float64, burst int) rateSpec {
	if rate <= 0 {
		return rateSpec{}
	}
	b := float64(burst)
	if burst <= 0 {
		b = math.Max(1, math.Ceil(2*rate))
	}
	return rateSpec{rate: rate, burst: b}
}

type bucket struct {
	tokens float64
	last   time.Time
}

// newRateLimiter returns a limiter whose default is rate per second with a
// bucket of burst (zero: twice the rate); a rate of zero or less means no
// default limit.
func newRateLimiter(rate float64, burst int, now func() time.Time) *rateLimiter {
	return &rateLimiter{def: specFor(rate, burst), now: now, own: map[string]rateSpec{}, buckets: map[string]*bucket{}}
}

// limit gives principal its own rate and burst instead of the default; a
// rate below zero exempts it.
func (l *rateLimiter) limit(principal string, rate float64, burst int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.own[principal] = specFor(rate, burst)
}

// allow takes one token for principal, or reports how long until one is
// available.
func (l *rateLimiter) allow(principal string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sp, ok := l.own[principal]
	if !ok {
		sp = l.def
	}
	if sp.rate <= 0 {
		return 0, true
	}
	now := l.now()
	b := l.buckets[principal]
	if b == nil {
		b = &bucket{tokens: sp.burst, last: now}
		l.buckets[principal] = b
	}
	b.tokens = math.Min(sp.burst, b.tokens+now.Sub(b.last).Seconds()*sp.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / sp.rate * float64(time.Second)), false
}

// feedSlots counts the open feeds (SSE and WebSocket), in all and per
// principal, so that no one token can take every slot.
type feedSlots struct {
	max, perToken int

	mu    sync.Mutex
	total int
	by    map[string]int
}

func newFeedSlots(max, perToken int) *feedSlots {
	return &feedSlots{max: max, perToken: perToken, by: map[string]int{}}
}

// acquire takes a slot for principal: a 503 problem when every slot is
// taken, a 429 one when the principal holds its share already. The release
// it returns gives the slot back; calling it more than once is harmless.
func (f *feedSlots) acquire(principal string) (release func(), err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.total >= f.max {
		return nil, unavailable("too many open event feeds; retry shortly")
	}
	if f.by[principal] >= f.perToken {
		p := problem(http.StatusTooManyRequests, "too-many-feeds",
			fmt.Sprintf("this token has %d event feeds open, its most; close one or retry later", f.by[principal]))
		p.RetryAfter = retryAfterSeconds
		return nil, p
	}
	f.total++
	f.by[principal]++
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.total--
			if f.by[principal]--; f.by[principal] <= 0 {
				delete(f.by, principal)
			}
		})
	}, nil
}
