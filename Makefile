# Inventory engine. `make help` lists the targets.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
BIN := bin/inventory
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: help run test services build bench lint chaos

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

services: ## make sure Redis and PostgreSQL run on loopback (installs them as root if absent)
	@bash internal/services/ensure.sh

build: ## build bin/inventory
	$(GO) build -o $(BIN) ./cmd/inventory

run: build ## start Redis and PostgreSQL if needed, migrate, seed the demo chain, serve
	@bash internal/services/run.sh

test: services ## vet, then every test with -race against real Redis and PostgreSQL
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

bench: services build ## benchmarks: engine vs redis-benchmark, the bare reference and the PostgreSQL-only baselines, ratios from one run
	$(GO) test -run '^$$' -bench . -benchtime 3s ./engine/
	@sha=$$(redis-cli SCRIPT LOAD 'return 1') && echo "redis-benchmark -q -n 200000 -c 50 EVALSHA $$sha 0" && \
		redis-benchmark -q -n 200000 -c 50 EVALSHA $$sha 0
	$(BIN) bench --scenario flash-sale --targets engine,server,bare,pg-guarded,pg-optimistic,redis-benchmark \
		--workers 200 --stock 1000000 --duration 20s --out bench/results
	@if command -v wrk >/dev/null; then \
		$(BIN) bench --scenario flash-sale --targets server,bare --client wrk --workers 200 --stock 1000000 --duration 20s --out bench/results; \
	else echo "wrk is not installed (apt-get install wrk): no wrk run"; fi

lint: ## gofmt, go vet and staticcheck (fetched through the Go module proxy at a pinned version)
	@test -z "$$(gofmt -l .)" || (gofmt -l .; exit 1)
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

chaos: services ## the fault-injection suite, long version (INVENTORY_CHAOS=long)
	INVENTORY_CHAOS=long $(GO) test -race -count=1 -timeout 30m -v ./internal/chaos/
