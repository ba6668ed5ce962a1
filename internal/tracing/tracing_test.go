package tracing_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/httpapi"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/internal/tracing"
)

// span is what the test receiver keeps of one exported span.
type span struct {
	scope, name string
	attrs       map[string]string
	resource    map[string]string
}

// receiver is an OTLP/HTTP trace receiver on loopback: it decodes every
// POST /v1/traces and keeps the spans.
type receiver struct {
	mu    sync.Mutex
	spans []span
	posts int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.posts++
	for _, rs := range msg.GetResourceSpans() {
		res := attrMap(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, span{scope: ss.GetScope().GetName(), name: s.GetName(), attrs: attrMap(s.GetAttributes()), resource: res})
			}
		}
	}
	r.mu.Unlock()
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (r *receiver) got() ([]span, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]span(nil), r.spans...), r.posts
}

func attrMap(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		v := kv.GetValue()
		switch {
		case v.GetStringValue() != "":
			m[kv.GetKey()] = v.GetStringValue()
		default:
			m[kv.GetKey()] = v.String()
		}
	}
	return m
}

// restoreGlobals puts back the global tracer provider and propagator.
func restoreGlobals(t *testing.T) {
	tp, prop := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	t.Cleanup(func() {
		otel.SetTracerProvider(tp)
		otel.SetTextMapPropagator(prop)
	})
}

func unsetOTEL(t *testing.T) {
	for _, k := range []string{tracing.EnvEndpoint, tracing.EnvTracesEndpoint, tracing.EnvProtocol, tracing.EnvTracesProtocol,
		tracing.EnvSDKDisabled, tracing.EnvTracesExporter, "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"} {
		t.Setenv(k, "")
	}
}

// With no endpoint, Setup installs nothing: the global provider stays the
// no-op one and spans record nothing.
func TestOffWithoutEndpoint(t *testing.T) {
	restoreGlobals(t)
	unsetOTEL(t)
	otel.SetTracerProvider(noop.NewTracerProvider())
	before := otel.GetTracerProvider()

	require.False(t, tracing.Enabled())
	shutdown, enabled, err := tracing.Setup(context.Background(), "inventory", "test")
	require.NoError(t, err)
	require.False(t, enabled)
	require.NoError(t, shutdown(context.Background()))
	require.Equal(t, before, otel.GetTracerProvider(), "no tracer provider installed")
	_, sp := otel.Tracer("x").Start(context.Background(), "x")
	require.False(t, sp.IsRecording())
	sp.End()

	// An endpoint turned off by OTEL_SDK_DISABLED or OTEL_TRACES_EXPORTER=none.
	t.Setenv(tracing.EnvEndpoint, "http://127.0.0.1:1")
	require.True(t, tracing.Enabled())
	t.Setenv(tracing.EnvTracesExporter, "none")
	require.False(t, tracing.Enabled())
	t.Setenv(tracing.EnvTracesExporter, "")
	t.Setenv(tracing.EnvSDKDisabled, "true")
	require.False(t, tracing.Enabled())
	_, enabled, err = tracing.Setup(context.Background(), "inventory", "test")
	require.NoError(t, err)
	require.False(t, enabled)
	require.Equal(t, before, otel.GetTracerProvider())
}

func TestUnknownProtocolIsAnError(t *testing.T) {
	restoreGlobals(t)
	unsetOTEL(t)
	t.Setenv(tracing.EnvEndpoint, "http://127.0.0.1:1")
	t.Setenv(tracing.EnvProtocol, "carrier-pigeon")
	_, enabled, err := tracing.Setup(context.Background(), "inventory", "test")
	require.ErrorContains(t, err, "carrier-pigeon")
	require.False(t, enabled)
}

// A request through a real server on real Redis, and a query on real
// PostgreSQL, reach an OTLP receiver as spans when the endpoint is set:
// the request's span named by its route with its request id, a span per
// Redis command and one per SQL query, flushed by shutdown.
func TestSpansReachTheCollector(t *testing.T) {
	restoreGlobals(t)
	unsetOTEL(t)
	rcv := &receiver{}
	col := httptest.NewServer(rcv)
	defer col.Close()
	t.Setenv(tracing.EnvEndpoint, col.URL)
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	shutdown, enabled, err := tracing.Setup(ctx, "inventory", "v9.9.9-test")
	require.NoError(t, err)
	require.True(t, enabled)
	_, isSDK := otel.GetTracerProvider().(*sdktrace.TracerProvider)
	require.True(t, isSDK)

	rdb := testsupport.RedisClient(t, 0)
	require.NoError(t, tracing.InstrumentRedis(rdb))
	prefix := testsupport.IsolatedPrefix(t, rdb)
	e, err := engine.New(engine.Config{Client: rdb, Prefix: prefix, Partitions: 2})
	require.NoError(t, err)
	require.NoError(t, e.Init(ctx))
	keys, err := httpapi.ParseKeys("trace-admin:admin")
	require.NoError(t, err)
	srv, err := httpapi.New(httpapi.Config{Engine: e, Keys: keys, Tracing: true})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	var served error
	var once sync.Once
	waitServed := func() error { once.Do(func() { stop(); served = <-done }); return served }
	defer func() { _ = waitServed() }()

	base := "http://" + ln.Addr().String()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/v1/stores/s1/items/sku-1", bytes.NewReader([]byte(`{"on_hand":5}`)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer trace-admin")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-ID", "trace-req-1")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Less(t, resp.StatusCode, 300, "%s", b)

	// The probes are not traced.
	resp, err = http.Get(base + "/healthz")
	require.NoError(t, err)
	_ = resp.Body.Close()

	pool := testsupport.Pool(t, "public", tracing.InstrumentPool)
	// otelpgx traces a query only under a recording span.
	qctx, parent := otel.Tracer("test").Start(ctx, "parent")
	var one int
	require.NoError(t, pool.QueryRow(qctx, "SELECT 1").Scan(&one))
	parent.End()

	require.NoError(t, waitServed())
	require.NoError(t, shutdown(ctx), "flush")

	spans, posts := rcv.got()
	require.Positive(t, posts)
	var httpSpan, redisSpan, pgSpan *span
	for i := range spans {
		s := &spans[i]
		require.Equal(t, "inventory", s.resource["service.name"])
		require.Equal(t, "v9.9.9-test", s.resource["service.version"])
		require.Equal(t, "test", s.resource["deployment.environment"])
		switch {
		case strings.HasPrefix(s.scope, "github.com/gofiber/contrib/otelfiber"):
			require.NotEqual(t, "/healthz", s.attrs["http.route"], "probes are not traced")
			if s.attrs["http.route"] == "/v1/stores/:store/items/:sku" {
				httpSpan = s
			}
		case strings.HasPrefix(s.scope, "github.com/redis/go-redis/extra/redisotel"):
			redisSpan = s
		case strings.HasPrefix(s.scope, "github.com/exaring/otelpgx"):
			if strings.Contains(s.attrs["db.statement"]+s.attrs["db.query.text"], "SELECT 1") {
				pgSpan = s
			}
		}
	}
	require.NotNil(t, httpSpan, "no span of the request")
	require.Equal(t, "/v1/stores/:store/items/:sku", httpSpan.name)
	require.Equal(t, "trace-req-1", httpSpan.attrs["request_id"])
	require.NotNil(t, redisSpan, "no Redis span")
	require.Equal(t, "redis", redisSpan.attrs["db.system"])
	require.NotNil(t, pgSpan, "no PostgreSQL span")
}
