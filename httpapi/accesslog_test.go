package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
)

// observed returns a tweak that sends the server's log to an observer.
func observed(level zapcore.Level, accessLog bool) (func(*Config), *observer.ObservedLogs) {
	core, logs := observer.New(level)
	return func(c *Config) { c.Logger = zap.New(core); c.AccessLog = accessLog }, logs
}

// accessLine returns the access line of the request with id, waiting for it
// (it is written before the response, so the wait is short).
func accessLine(t *testing.T, logs *observer.ObservedLogs, id string) map[string]any {
	t.Helper()
	var line map[string]any
	testsupport.WaitFor(t, 5*time.Second, "the access line of "+id, func() bool {
		for _, e := range logs.FilterMessage("request").FilterField(zap.String(logRequestID, id)).All() {
			line = e.ContextMap()
			return true
		}
		return false
	})
	return line
}

// requireNoToken fails when any field of any line holds a token.
func requireNoToken(t *testing.T, logs *observer.ObservedLogs) {
	t.Helper()
	for _, e := range logs.All() {
		for k, v := range e.ContextMap() {
			s := fmt.Sprint(v)
			for _, tok := range []string{tokAdmin, tokAdmin2, tokS1, tokS2, tokReader} {
				require.NotContains(t, s, tok, "line %q field %s", e.Message, k)
			}
		}
	}
}

func principalOf(t *testing.T, token string) string {
	for _, k := range testKeys(t) {
		if k.Token == token {
			return k.Principal()
		}
	}
	t.Fatalf("no key %s", token)
	return ""
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	tweak, logs := observed(zap.InfoLevel, true)
	ts := newTestServer(t, tweak)
	ts.put("s1", "lamp", 3)

	r := ts.req("GET", "/v1/stores/s1/items/lamp", tokS1, "", HeaderRequestID, "get-1")
	require.Equal(t, 200, r.Status)
	l := accessLine(t, logs, "get-1")
	require.Equal(t, "GET", l[logMethod])
	require.Equal(t, "/v1/stores/:store/items/:sku", l[logRoute])
	require.Equal(t, "/v1/stores/s1/items/lamp", l[logPath])
	require.EqualValues(t, 200, l[logStatus])
	require.EqualValues(t, len(r.Body), l[logBytes])
	require.Equal(t, principalOf(t, tokS1), l[logPrincipal])
	require.IsType(t, time.Duration(0), l[logDuration])
	require.Positive(t, l[logDuration])

	// A write, with its id made by the server.
	r = ts.req("PUT", "/v1/stores/s1/items/desk", tokAdmin, `{"on_hand":2}`)
	require.Equal(t, 201, r.Status)
	l = accessLine(t, logs, r.Header.Get(HeaderRequestID))
	require.Equal(t, "PUT", l[logMethod])
	require.EqualValues(t, 201, l[logStatus])
	require.Equal(t, principalOf(t, tokAdmin), l[logPrincipal])

	// Problems from a middleware and from the router.
	r = ts.req("GET", "/v1/stores/s1/items/lamp", "", "", HeaderRequestID, "anon")
	require.Equal(t, 401, r.Status)
	l = accessLine(t, logs, "anon")
	require.EqualValues(t, 401, l[logStatus])
	require.Equal(t, "", l[logPrincipal], "no principal before authentication")
	require.Equal(t, "/v1/stores/:store/items/:sku", l[logRoute])
	r = ts.req("GET", "/v1/no/such/route", tokAdmin, "", HeaderRequestID, "lost")
	require.Equal(t, 404, r.Status)
	l = accessLine(t, logs, "lost")
	require.Equal(t, "unmatched", l[logRoute])
	require.EqualValues(t, 404, l[logStatus])

	// A request Fiber refuses before the middleware still gets its line.
	r = rawRequest(t, ts, "POST /v1/adjustments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+tokAdmin+
		"\r\nX-Request-ID: huge\r\nContent-Length: 20000000\r\n\r\n{")
	require.Equal(t, 413, r.Status)
	l = accessLine(t, logs, "huge")
	require.EqualValues(t, 413, l[logStatus])
	require.Equal(t, "unmatched", l[logRoute])

	// A feed authenticated by a token in the query: the line has the route
	// and the path, never the query.
	rq, err := http.NewRequest("GET", ts.url+"/v1/events?store=s1&access_token="+tokReader, nil)
	require.NoError(t, err)
	rq.Header.Set(HeaderRequestID, "feed-1")
	res, err := http.DefaultClient.Do(rq)
	require.NoError(t, err)
	checkHTTP(t, rq, nil, res, nil, true)
	require.Equal(t, 200, res.StatusCode)
	require.Equal(t, "feed-1", res.Header.Get(HeaderRequestID))
	res.Body.Close()
	l = accessLine(t, logs, "feed-1")
	require.Equal(t, "/v1/events", l[logRoute])
	require.Equal(t, "/v1/events", l[logPath])
	require.EqualValues(t, -1, l[logBytes], "a stream's size is not known when its line is written")
	require.Equal(t, principalOf(t, tokReader), l[logPrincipal])

	requireNoToken(t, logs)
}

func TestAccessLogOff(t *testing.T) {
	t.Parallel()
	tweak, logs := observed(zap.DebugLevel, false)
	ts := newTestServer(t, tweak)
	require.Equal(t, 200, ts.req("GET", "/healthz", "", "").Status)
	require.Equal(t, 404, ts.req("GET", "/nowhere", tokAdmin, "").Status)
	require.Equal(t, 413, rawRequest(t, ts, "POST /v1/adjustments HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n\r\n{").Status)
	require.Zero(t, logs.FilterMessage("request").Len(), "the access log is off by default")
}

// failingReconciler fails every run, or panics.
type failingReconciler struct{ panics bool }

func (f failingReconciler) Reconcile(context.Context, string) (any, error) {
	if f.panics {
		panic("reconciler bug")
	}
	return nil, errors.New("boom: the reconciler's own failure")
}

// failingLedger answers Ping and fails History.
type failingLedger struct{}

func (failingLedger) History(context.Context, string, string, int) ([]engine.Event, error) {
	return nil, errors.New("connection refused")
}
func (failingLedger) Ping(context.Context) error { return nil }

// TestErrorLogsCarryRequestID: the lines a request's failure writes (the
// error handler's, a handler's own, a recovered panic's) carry the id the
// response and its problem carry.
func TestErrorLogsCarryRequestID(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.InfoLevel)
	ts := newTestServer(t, func(c *Config) {
		c.Logger = zap.New(core)
		c.Reconciler = failingReconciler{}
		c.Ledger = failingLedger{}
	})
	entryOf := func(t *testing.T, msg, id string) observer.LoggedEntry {
		t.Helper()
		var got observer.LoggedEntry
		testsupport.WaitFor(t, 5*time.Second, msg+" of "+id, func() bool {
			es := logs.FilterMessage(msg).FilterField(zap.String(logRequestID, id)).All()
			if len(es) > 0 {
				got = es[0]
			}
			return len(es) > 0
		})
		return got
	}

	t.Run("error handler", func(t *testing.T) {
		r := ts.in(t).req("POST", "/v1/admin/reconcile?mode=check", tokAdmin, "", HeaderRequestID, "rec-1")
		p := requireProblem(t, r, 500)
		require.Equal(t, "rec-1", p["request_id"])
		e := entryOf(t, "request failed", "rec-1")
		require.Equal(t, zapcore.ErrorLevel, e.Level)
		m := e.ContextMap()
		require.Equal(t, "POST", m[logMethod])
		require.Equal(t, "/v1/admin/reconcile", m[logPath])
		require.Contains(t, m["error"], "boom")
	})
	t.Run("handler", func(t *testing.T) {
		r := ts.in(t).req("GET", "/v1/stores/s1/items/lamp/history", tokAdmin, "")
		p := requireProblem(t, r, 503)
		id := r.Header.Get(HeaderRequestID)
		require.Equal(t, id, p["request_id"])
		e := entryOf(t, "history", id)
		require.Equal(t, zapcore.WarnLevel, e.Level)
		require.Contains(t, e.ContextMap()["error"], "connection refused")
	})
	t.Run("panic", func(t *testing.T) {
		core, logs := observer.New(zap.InfoLevel)
		ts := newTestServer(t, func(c *Config) { c.Logger = zap.New(core); c.Reconciler = failingReconciler{panics: true} })
		r := ts.in(t).req("POST", "/v1/admin/reconcile", tokAdmin, "", HeaderRequestID, "rec-panic")
		p := requireProblem(t, r, 500)
		require.Equal(t, "rec-panic", p["request_id"])
		testsupport.WaitFor(t, 5*time.Second, "the panic's line", func() bool {
			return logs.FilterMessage("handler panicked").FilterField(zap.String(logRequestID, "rec-panic")).Len() == 1
		})
	})
	requireNoToken(t, logs)
	for _, e := range logs.All() {
		require.True(t, strings.HasPrefix(fmt.Sprint(e.ContextMap()[logRequestID]), "rec-") ||
			madeID.MatchString(fmt.Sprint(e.ContextMap()[logRequestID])), "every line of a request has its id: %q %v", e.Message, e.ContextMap())
	}
}
