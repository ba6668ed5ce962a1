#!/usr/bin/env bash
# run.sh: what `make run` does after building bin/inventory. Makes sure Redis
# and PostgreSQL run on loopback (falling back to the embedded Redis and no
# ledger when they cannot be had), applies migrations, seeds the demo chain
# when the deployment is empty, then serves in the foreground (Ctrl-C stops).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=bin/inventory

say() { echo "run: $*" >&2; }
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

if [ -z "${INVENTORY_REDIS_URL:-}${INVENTORY_REDIS_CLUSTER_ADDRS:-}" ] || [ -z "${INVENTORY_DATABASE_URL:-}" ]; then
	if ! bash internal/services/ensure.sh; then
		say "could not make sure both services run; checking what is there"
	fi
	if [ -z "${INVENTORY_REDIS_URL:-}${INVENTORY_REDIS_CLUSTER_ADDRS:-}" ] && ! port_open 127.0.0.1 6379; then
		export INVENTORY_REDIS_URL=embedded
		say "Redis is not available: using the EMBEDDED Redis (in-process miniredis; everything is lost on exit)"
	fi
	if [ -z "${INVENTORY_DATABASE_URL:-}" ] && ! port_open 127.0.0.1 5432; then
		export INVENTORY_DATABASE_URL=off
		say "PostgreSQL is not available: the LEDGER IS OFF (no history, no reconciliation, no rebuild from the ledger)"
	fi
fi
if [ "${INVENTORY_REDIS_URL:-}" = embedded ] && [ "${INVENTORY_DATABASE_URL:-}" != off ]; then
	# A fresh embedded Redis per run next to a lasting ledger would be
	# rebuilt from it at every start: fine, but say so.
	say "embedded Redis with the ledger on: each start rebuilds Redis from PostgreSQL"
fi

if [ -z "${INVENTORY_API_KEYS:-}" ]; then
	token=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
	export INVENTORY_API_KEYS="$token:admin"
else
	token=${INVENTORY_API_KEYS%%:*}
fi

serve_flags=()
if [ "${INVENTORY_DATABASE_URL:-}" != off ]; then
	"$BIN" migrate
fi
if [ "${INVENTORY_REDIS_URL:-}" = embedded ]; then
	serve_flags+=(--seed-demo) # the embedded Redis lives inside serve
else
	"$BIN" seed --demo
fi

addr=${INVENTORY_ADDR:-127.0.0.1:8080}
cat >&2 <<MSG

  Inventory is starting at   http://$addr/
  Dashboard (token filled):  http://$addr/#token=$token
  Admin token:               $token

  try:  curl -H 'Authorization: Bearer $token' http://$addr/v1/stores/amsterdam/items?limit=3

MSG
exec "$BIN" serve ${serve_flags[@]+"${serve_flags[@]}"}
