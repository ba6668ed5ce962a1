package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/require"
)

// The OpenAPI document is checked, not trusted: every response the tests
// receive is validated against it (checkExchange), through the request
// helpers of main_test.go and the feed helpers of the event tests.

var apiDoc struct {
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	err    error
}

// loadAPIDoc parses and validates openapi.json once per test binary.
func loadAPIDoc(t testing.TB) (*openapi3.T, routers.Router) {
	t.Helper()
	apiDoc.once.Do(func() {
		l := openapi3.NewLoader()
		doc, err := l.LoadFromData(openapiJSON)
		if err != nil {
			apiDoc.err = err
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			apiDoc.err = err
			return
		}
		// Requests are matched by path alone: the server is "/" on
		// whatever host serves it.
		doc.Servers = nil
		closeObjects(doc)
		apiDoc.doc = doc
		apiDoc.router, apiDoc.err = gorillamux.NewRouter(doc)
	})
	require.NoError(t, apiDoc.err, "openapi.json")
	return apiDoc.doc, apiDoc.router
}

// closeObjects makes every object schema of doc that lists its properties
// refuse members it does not list, for the tests only: a member the server
// sends must be in the document. (The published document leaves them
// open, as RFC 9457 and later versions of this API want.)
func closeObjects(doc *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	var walk func(*openapi3.SchemaRef)
	walk = func(r *openapi3.SchemaRef) {
		if r == nil || r.Value == nil || seen[r.Value] {
			return
		}
		s := r.Value
		seen[s] = true
		if len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
			no := false
			s.AdditionalProperties.Has = &no
		}
		for _, p := range s.Properties {
			walk(p)
		}
		walk(s.Items)
		walk(s.AdditionalProperties.Schema)
		for _, l := range [][]*openapi3.SchemaRef{s.AllOf, s.AnyOf, s.OneOf} {
			for _, x := range l {
				walk(x)
			}
		}
	}
	for _, r := range doc.Components.Schemas {
		walk(r)
	}
	for _, pi := range doc.Paths.Map() {
		for _, op := range pi.Operations() {
			for _, rr := range op.Responses.Map() {
				if rr.Value == nil {
					continue
				}
				for _, mt := range rr.Value.Content {
					walk(mt.Schema)
				}
			}
		}
	}
}

// checkedHeaders are the response headers of this API: when a response
// carries one, the document must name it for that response.
var checkedHeaders = []string{"ETag", "Location", "Retry-After", "Idempotent-Replayed", HeaderRequestID}

// exchange is one request and the response it got, as the client saw them.
type exchange struct {
	Method  string
	URL     string // path and query, or an absolute URL
	Header  http.Header
	ReqBody []byte
	Status  int
	RHeader http.Header
	Body    []byte
	// Stream marks a response whose body is a stream (SSE, WebSocket):
	// its status and headers are checked, its body is not.
	Stream bool
}

// checkExchange fails t unless the response of x is one the document
// allows: its status is documented for the operation, and its headers,
// content type and body match the document. A request the document calls
// invalid must not succeed either. A path the document does not have must
// be answered 404 or 405 with a problem.
func checkExchange(t testing.TB, x exchange) {
	t.Helper()
	doc, router := loadAPIDoc(t)
	u, err := url.Parse(x.URL)
	require.NoError(t, err)
	rq := &http.Request{Method: x.Method, URL: u, Header: x.Header.Clone(), Host: u.Host}
	if rq.Header == nil {
		rq.Header = http.Header{}
	}
	rq.Body = io.NopCloser(bytes.NewReader(x.ReqBody))
	rq.ContentLength = int64(len(x.ReqBody))
	what := x.Method + " " + u.RequestURI()
	route, params, err := router.FindRoute(rq)
	if errors.Is(err, routers.ErrPathNotFound) || errors.Is(err, routers.ErrMethodNotAllowed) {
		require.Contains(t, []int{404, 405}, x.Status, "%s is not in openapi.json, yet it was answered %d: %s", what, x.Status, x.Body)
		checkProblemBody(t, doc, what, x)
		return
	}
	require.NoError(t, err, what)
	op := route.Operation
	require.NotNil(t, op.Responses.Status(x.Status),
		"openapi.json does not document status %d for %s (body %s)", x.Status, what, x.Body)
	resp := op.Responses.Status(x.Status).Value

	// Every header of this API that the response carries is documented.
	for _, h := range checkedHeaders {
		if x.RHeader.Get(h) == "" {
			continue
		}
		found := false
		for name := range resp.Headers {
			if strings.EqualFold(name, h) {
				found = true
			}
		}
		require.True(t, found, "openapi.json does not document header %s on %d of %s", h, x.Status, what)
	}
	if len(resp.Content) == 0 {
		require.Empty(t, x.Body, "openapi.json documents no body for %d of %s", x.Status, what)
	}

	in := &openapi3filter.RequestValidationInput{
		Request:    rq,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
			MultiError:         true,
		},
	}
	rerr := openapi3filter.ValidateRequest(context.Background(), in)
	if rerr != nil {
		require.False(t, x.Status < 400, "openapi.json calls %s invalid (%v), yet it was answered %d", what, rerr, x.Status)
	}
	// The dashboard's files are not decoded: their content type is checked.
	mt, _, _ := mime.ParseMediaType(x.RHeader.Get("Content-Type"))
	exempt := x.Stream || mt == "text/html" || mt == "text/javascript" || mt == "text/css"
	// 304 is left alone by ValidateResponse; it was checked above.
	err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 x.Status,
		Header:                 x.RHeader,
		Body:                   io.NopCloser(bytes.NewReader(x.Body)),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			ExcludeResponseBody:   exempt,
			MultiError:            true,
		},
	})
	require.NoError(t, err, "%s answered %d %s: %s", what, x.Status, x.RHeader.Get("Content-Type"), x.Body)
	if exempt && mt != "" {
		require.NotNil(t, resp.Content.Get(mt), "openapi.json does not document %s for %d of %s", mt, x.Status, what)
	}
}

// checkProblemBody checks an answer outside the document's paths: a
// problem, with its request id.
func checkProblemBody(t testing.TB, doc *openapi3.T, what string, x exchange) {
	t.Helper()
	require.Equal(t, "application/problem+json", x.RHeader.Get("Content-Type"), what)
	require.NotEmpty(t, x.RHeader.Get(HeaderRequestID), what)
	checkSchema(t, doc, "Problem", x.Body)
}

// checkSchema fails t unless b, JSON, matches the component schema name.
func checkSchema(t testing.TB, doc *openapi3.T, name string, b []byte) {
	t.Helper()
	s := doc.Components.Schemas[name]
	require.NotNil(t, s, "openapi.json has no schema %s", name)
	var v any
	require.NoError(t, json.Unmarshal(b, &v), "%s: %s", name, b)
	require.NoError(t, s.Value.VisitJSON(v, openapi3.MultiErrors(), openapi3.VisitAsResponse()), "%s: %s", name, b)
}

// checkFeedMessage checks one message of an event feed against the
// document: an SSE data: of kind "" (an event) or "gap", or a WebSocket
// message (kind "ws").
func checkFeedMessage(t testing.TB, kind string, b []byte) {
	t.Helper()
	doc, _ := loadAPIDoc(t)
	switch kind {
	case "":
		checkSchema(t, doc, "Event", b)
	case "gap":
		checkSchema(t, doc, "FeedGap", b)
	case "ws":
		checkSchema(t, doc, "FeedMessage", b)
	default:
		t.Fatalf("openapi.json documents no SSE event %q: %s", kind, b)
	}
}

// TestOpenAPIDocument: the document is valid OpenAPI 3, and every
// operation has a unique operationId.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	doc, _ := loadAPIDoc(t)
	seen := map[string]string{}
	var paths []string
	for p := range doc.Paths.Map() {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		for m, op := range doc.Paths.Value(p).Operations() {
			where := m + " " + p
			require.NotEmpty(t, op.OperationID, "%s has no operationId", where)
			require.Empty(t, seen[op.OperationID], "operationId %s of %s is also %s", op.OperationID, where, seen[op.OperationID])
			seen[op.OperationID] = where
		}
	}
	for _, name := range []string{"Event", "FeedGap", "FeedMessage", "Problem", "Item", "Reservation", "Readiness"} {
		require.Contains(t, doc.Components.Schemas, name)
	}
}

// checkHTTP is checkExchange for a request sent with net/http (or read
// back from raw bytes) and its response; body is the response's body, nil
// for a stream.
func checkHTTP(t testing.TB, rq *http.Request, reqBody []byte, res *http.Response, body []byte, stream bool) {
	t.Helper()
	checkExchange(t, exchange{Method: rq.Method, URL: rq.URL.String(), Header: rq.Header, ReqBody: reqBody,
		Status: res.StatusCode, RHeader: res.Header, Body: body, Stream: stream})
}

// parseRaw reads back a raw request as net/http sees it, with the part of
// its body that raw holds.
func parseRaw(t testing.TB, raw string) (*http.Request, []byte) {
	t.Helper()
	rq, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	require.NoError(t, err, "raw request %q", raw)
	_, body, _ := strings.Cut(raw, "\r\n\r\n")
	return rq, []byte(body)
}

// failRecorder is a testing.TB that records a failure instead of failing:
// it lets TestOpenAPICheckCatches see checkExchange refuse.
type failRecorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *failRecorder) Helper() {}
func (r *failRecorder) Errorf(format string, args ...any) {
	r.failed = true
	r.msg += fmt.Sprintf(format, args...)
}
func (r *failRecorder) FailNow() { r.failed = true; runtime.Goexit() }

// refuses reports whether checkExchange fails x, and why.
func refuses(t *testing.T, x exchange) (bool, string) {
	r := &failRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		checkExchange(r, x)
	}()
	<-done
	return r.failed, r.msg
}

// TestOpenAPICheckCatches: the check refuses what the document does not
// allow, so a passing suite means something.
func TestOpenAPICheckCatches(t *testing.T) {
	t.Parallel()
	item := `{"store":"s1","sku":"x","on_hand":1,"reserved":0,"committed":0,"damaged":0,"quality_control":0,"display":0,"incoming":0,"available":1,"version":1,"reorder_point":null,"max_per_customer":null,"safety_stock":null,"updated_at":"2026-01-01T00:00:00Z"}`
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		h.Set(HeaderRequestID, "r1")
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	get := func(status int, h http.Header, body string) exchange {
		return exchange{Method: "GET", URL: "/v1/stores/s1/items/x", Status: status, RHeader: h, Body: []byte(body)}
	}
	ok, msg := refuses(t, get(200, hdr("Content-Type", "application/json", "ETag", `"1"`), item))
	require.False(t, ok, "a good answer passes: %s", msg)
	for name, x := range map[string]exchange{
		"undocumented status":         get(418, hdr("Content-Type", "application/problem+json"), `{"type":"t","title":"t","status":418,"detail":"d"}`),
		"undocumented member":         get(200, hdr("Content-Type", "application/json", "ETag", `"1"`), strings.Replace(item, `{`, `{"colour":"red",`, 1)),
		"undocumented problem member": get(404, hdr("Content-Type", "application/problem+json"), `{"type":"t","title":"t","status":404,"detail":"d","colour":"red"}`),
		"missing member":              get(200, hdr("Content-Type", "application/json", "ETag", `"1"`), strings.Replace(item, `"version":1,`, "", 1)),
		"wrong content type":          get(200, hdr("Content-Type", "text/plain", "ETag", `"1"`), item),
		"missing ETag":                get(200, hdr("Content-Type", "application/json"), item),
		"missing request id":          get(200, http.Header{"Content-Type": {"application/json"}, "ETag": {`"1"`}}, item),
		"undocumented header":         get(200, hdr("Content-Type", "application/json", "ETag", `"1"`, "Location", "/x"), item),
		"429 without Retry-After":     get(429, hdr("Content-Type", "application/problem+json"), `{"type":"t","title":"t","status":429,"detail":"d"}`),
		"a body on 304":               get(304, hdr("ETag", `"1"`), item),
		"unknown route served":        {Method: "GET", URL: "/v2/nope", Status: 200, RHeader: hdr("Content-Type", "application/json"), Body: []byte(`{}`)},
		"invalid request accepted": {Method: "POST", URL: "/v1/stores/s1/items/x/adjust", Header: http.Header{"Content-Type": {"application/json"}},
			ReqBody: []byte(`{"delta":"one"}`), Status: 200, RHeader: hdr("Content-Type", "application/json", "ETag", `"1"`), Body: []byte(item)},
		"stream status undocumented": {Method: "GET", URL: "/v1/ws", Status: 200, RHeader: hdr(), Stream: true},
	} {
		ok, _ := refuses(t, x)
		require.True(t, ok, "the check lets through: %s", name)
	}
	for kind, b := range map[string]string{"": `{"sku":"x"}`, "gap": `{"partitions":["a"],"detail":"d"}`, "ws": `{"event":{}}`} {
		r := &failRecorder{TB: t}
		done := make(chan struct{})
		go func() { defer close(done); checkFeedMessage(r, kind, []byte(b)) }()
		<-done
		require.True(t, r.failed, "feed message %q %s passes", kind, b)
	}
}
