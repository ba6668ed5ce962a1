#!/bin/bash
# serve-cost.sh BIN LABEL [serve flags...]
#
# What one sale costs each process when `inventory serve` runs as its own
# process: starts BIN serve on the Redis at 127.0.0.1:6391 (start one of
# its own first: redis-server --port 6391 --save "" --appendonly no
# --daemonize yes) and a scratch PostgreSQL database p12, sells one hot SKU
# with wrk -t2 -c64 for DUR (default 10s), and prints sales/s, the
# successful answers, p99, and µs of CPU per sale of the server (/proc),
# Redis (its INFO cpu) and PostgreSQL (its processes), then Redis' command
# statistics per sale. Flushes that Redis at the end. Needs wrk, bc, psql.
set -u
BIN=$1; LABEL=$2; shift 2
PFX=p12$RANDOM
R="redis-cli -p 6391"
psql -h 127.0.0.1 -U postgres -qc "drop database if exists p12" -qc "create database p12" postgres >/dev/null 2>&1
INVENTORY_REDIS_URL=redis://127.0.0.1:6391/0 INVENTORY_ADDR=127.0.0.1:18500 INVENTORY_ADMIN_ADDR=127.0.0.1:19500 INVENTORY_REDIS_PREFIX=$PFX \
 INVENTORY_DATABASE_URL='postgres://postgres@127.0.0.1:5432/p12?sslmode=disable' INVENTORY_API_KEYS=tok:admin \
 $BIN serve --rate-limit -1 "$@" >/tmp/p12/serve.log 2>&1 &
SP=$!
for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:18500/healthz && break; sleep 0.2; done
sleep 1
curl -s -X PUT -H 'Authorization: Bearer tok' -H 'Content-Type: application/json' -d '{"on_hand":100000000}' http://127.0.0.1:18500/v1/stores/s1/items/sofa >/dev/null
cat > /tmp/p12/post.lua <<'L'
wrk.method = "POST"
wrk.body = '{"lines":[{"sku":"sofa","qty":1}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer tok"
L
wrk -t2 -c64 -d2s -s /tmp/p12/post.lua http://127.0.0.1:18500/v1/stores/s1/checkout > /dev/null
sleep 1
$R config resetstat >/dev/null
rc() { $R info cpu | tr -d '\r' | awk -F: '/used_cpu_(user|sys):/{s+=$2} END{printf "%.4f", s}'; }
pgc() { { for p in $(pgrep -x postgres); do awk '{print $14+$15}' /proc/$p/stat 2>/dev/null; done; awk '{print $16+$17}' /proc/$(pgrep -o -x postgres)/stat; } | awk '{s+=$1} END{print s}'; }
c0=$(rc); s0=$(awk '{print $14+$15}' /proc/$SP/stat); g0=$(pgc)
wrk -t2 -c64 -d${DUR:-10s} --latency -s /tmp/p12/post.lua http://127.0.0.1:18500/v1/stores/s1/checkout > /tmp/p12/wrk.txt
c1=$(rc); s1=$(awk '{print $14+$15}' /proc/$SP/stat); g1=$(pgc)
N=$(grep -o '[0-9]* requests in' /tmp/p12/wrk.txt | awk '{print $1}')
NON=$(grep -o 'Non-2xx or 3xx responses: [0-9]*' /tmp/p12/wrk.txt | awk '{print $NF}'); NON=${NON:-0}
OK=$((N-NON))
RPS=$(grep Requests/sec /tmp/p12/wrk.txt | awk '{print $2}')
P99=$(grep ' 99%' /tmp/p12/wrk.txt | awk '{print $2}')
echo "$LABEL: $RPS req/s ok=$OK non2xx=$NON p99=$P99 server-cpu $(echo "($s1-$s0)*10000/$OK" | bc -l | xargs printf '%.1f') µs/sale redis-cpu $(echo "($c1-$c0)*1000000/$OK" | bc -l | xargs printf '%.1f') µs/sale pg-cpu $(echo "($g1-$g0)*10000/$OK" | bc -l | xargs printf '%.1f') µs/sale"
$R info commandstats | tr -d '\r' | grep cmdstat | awk -F'[:=,]' -v n=$OK '{printf "    %-22s calls/sale %.3f  usec/sale %.2f\n", $1, $3/n, $5/n}' | sort -k5 -nr | head -${TOP:-6}
kill $SP; wait $SP 2>/dev/null
$R flushall >/dev/null
