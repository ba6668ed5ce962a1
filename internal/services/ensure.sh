#!/usr/bin/env bash
# ensure.sh: make sure Redis and PostgreSQL answer on their default loopback
# ports. Uses running ones; else starts installed ones; else installs them
# from Debian's packages (needs root). Also installs Chromium, which the
# dashboard's browser tests drive (internal/browser), when it is absent.
# Exits non-zero when one cannot be had.
set -u

log() { echo "services: $*" >&2; }

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

apt_updated=0
apt_install() {
	if [ "$(id -u)" != 0 ]; then
		log "cannot install $* without root"
		return 1
	fi
	if [ $apt_updated = 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || return 1
		apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() {
	for _ in $(seq 1 60); do
		if "$1"; then return 0; fi
		sleep 0.5
	done
	return 1
}

ensure_redis() {
	if redis_up; then return 0; fi
	if ! command -v redis-server >/dev/null; then
		log "installing redis-server"
		apt_install redis-server redis-tools || return 1
	fi
	log "starting redis-server on 127.0.0.1:6379"
	mkdir -p /var/lib/redis /var/log/redis
	redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
		--maxmemory-policy noeviction --dir /var/lib/redis --logfile /var/log/redis/ci.log
	wait_for redis_up
}

ensure_pg() {
	if pg_up; then return 0; fi
	if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
		log "installing postgresql"
		apt_install postgresql postgresql-client || return 1
	fi
	log "starting postgresql"
	pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
	wait_for pg_up || return 1
	# trust auth on loopback for user postgres, as the defaults expect
	if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1; then
		hba=$(ls /etc/postgresql/*/main/pg_hba.conf | tail -1)
		log "allowing trust auth on loopback in $hba"
		sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
		pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main reload
	fi
}

# ensure_test_db creates the database the tests default to, whether this
# script started PostgreSQL or found it running.
# INVENTORY_TEST_DB_NAME names it (default test; letters, digits, _).
ensure_test_db() {
	local db="${INVENTORY_TEST_DB_NAME:-test}"
	case "$db" in *[!A-Za-z0-9_]*|"") log "bad database name $db"; return 1 ;; esac
	psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1 from pg_database where datname='$db'" | grep -q 1 ||
		psql -h 127.0.0.1 -U postgres -d postgres -c "create database $db" >/dev/null
}

# ensure_chromium installs Debian's chromium for the browser tests.
ensure_chromium() {
	if command -v chromium >/dev/null || command -v chromium-browser >/dev/null || [ -n "${CHROMIUM:-}" ]; then return 0; fi
	log "installing chromium (for the dashboard's browser tests)"
	apt_install chromium
}

rc=0
ensure_chromium || { log "chromium is not installed: the browser tests will fail"; rc=1; }
ensure_redis || { log "Redis is not reachable on 127.0.0.1:6379"; rc=1; }
if ensure_pg; then
	ensure_test_db || { log "cannot create the database test"; rc=1; }
else
	log "PostgreSQL is not reachable on 127.0.0.1:5432"; rc=1
fi
exit $rc
