// Package tracing sends OpenTelemetry traces over OTLP when the standard
// OTEL_* variables ask for it, and instruments the Redis and PostgreSQL
// clients. Without OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) nothing is set up: no exporter, no
// goroutine, and the global tracer provider stays the no-op one.
//
// The exporter reads its own settings from the environment (endpoint,
// headers, timeout, compression, TLS certificates); the SDK reads
// OTEL_TRACES_SAMPLER, OTEL_BSP_* and OTEL_SERVICE_NAME /
// OTEL_RESOURCE_ATTRIBUTES. OTEL_EXPORTER_OTLP_PROTOCOL (or
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL) picks "http/protobuf", the default,
// or "grpc". OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turn
// tracing off even with an endpoint.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
)

// The standard variables this package looks at itself; the SDK reads the
// rest.
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
	EnvTracesExporter = "OTEL_TRACES_EXPORTER"
)

// Enabled reports whether the environment asks for traces.
func Enabled() bool {
	if strings.EqualFold(strings.TrimSpace(os.Getenv(EnvSDKDisabled)), "true") {
		return false
	}
	if strings.EqualFold(strings.TrimSpace(os.Getenv(EnvTracesExporter)), "none") {
		return false
	}
	return strings.TrimSpace(os.Getenv(EnvEndpoint)) != "" || strings.TrimSpace(os.Getenv(EnvTracesEndpoint)) != ""
}

func noop(context.Context) error { return nil }

// Setup installs the global tracer provider and the W3C trace-context and
// baggage propagators when Enabled, with serviceName (unless
// OTEL_SERVICE_NAME says otherwise) and version on every span's resource.
// shutdown flushes the spans not yet sent and stops the exporter; call it
// once, when the process stops. When tracing is off, enabled is false,
// nothing is installed and shutdown does nothing.
func Setup(ctx context.Context, serviceName, version string) (shutdown func(context.Context) error, enabled bool, err error) {
	if !Enabled() {
		return noop, false, nil
	}
	exp, err := newExporter(ctx)
	if err != nil {
		return noop, false, err
	}
	res, err := resource.Merge(
		resource.NewSchemaless(semconv.ServiceName(serviceName), semconv.ServiceVersion(version)),
		// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win.
		resource.Environment(),
	)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return noop, false, fmt.Errorf("tracing resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return tp.Shutdown, true, nil
}

// newExporter makes the OTLP exporter of the protocol the environment
// names; the exporter reads its endpoint and the rest itself.
func newExporter(ctx context.Context) (*otlptrace.Exporter, error) {
	proto := strings.TrimSpace(os.Getenv(EnvTracesProtocol))
	if proto == "" {
		proto = strings.TrimSpace(os.Getenv(EnvProtocol))
	}
	var (
		exp *otlptrace.Exporter
		err error
	)
	switch proto {
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("%s=%q: want http/protobuf or grpc", EnvProtocol, proto)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	return exp, nil
}

// InstrumentRedis adds a span per command (or pipeline) to rdb, through
// the global tracer provider. Traces only: no metrics, and no command
// arguments (a script's source, an item's data) in db.statement.
func InstrumentRedis(rdb redis.UniversalClient) error {
	if rdb == nil {
		return errors.New("tracing: no Redis client")
	}
	return redisotel.InstrumentTracing(rdb, redisotel.WithDBStatement(false))
}

// InstrumentPool adds a span per query, batch and copy to the connections
// of a pgx pool config, through the global tracer provider, under the
// caller's span (otelpgx starts none of its own). Query parameters are never
// recorded.
func InstrumentPool(cfg *pgxpool.Config) {
	cfg.ConnConfig.Tracer = otelpgx.NewTracer()
}
