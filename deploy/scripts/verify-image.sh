#!/usr/bin/env bash
# verify-image.sh: builds deploy/Dockerfile and checks the image, on a
# machine whose Docker cannot pull its base images (no registry access).
#
#   sudo deploy/scripts/verify-image.sh        # from the repository's root
#
# It is no part of `make test` or CI: it needs root, a Docker engine and a
# few minutes. What it does:
#
#  1. Uses the engine at DOCKER_HOST; when none answers, starts a private
#     dockerd (Debian's docker.io package; no iptables, no bridge, overlay2
#     or else vfs storage, its files under a temporary directory) and stops
#     it at the end.
#  2. Makes local stand-ins for the Dockerfile's two base images, unless
#     images of those names are already there (pulled, on a machine that
#     can):
#     - golang:1.26-bookworm: busybox (for RUN's /bin/sh), this machine's
#       Go toolchain in /usr/local/go, CA certificates, and a module proxy
#       in a directory (GOPROXY=file:///goproxy) holding the modules go.sum
#       names, taken from this machine's module cache;
#     - gcr.io/distroless/static-debian12:nonroot: /etc/passwd and
#       /etc/group with root and nonroot (65532), /home/nonroot, /tmp, CA
#       certificates and time zones; USER 65532, no shell.
#  3. Builds the image from the tracked and untracked-but-not-ignored files
#     of the working tree, with deploy/Dockerfile.dockerignore as the
#     context's .dockerignore, with the classic builder (BuildKit would
#     fetch the `# syntax=` frontend from a registry) and no network.
#  4. Checks it: `version` runs; the image's user is 65532:65532 and it has
#     no shell; `serve` on an embedded Redis without the ledger, in a
#     container of its own network, becomes healthy by the Dockerfile's
#     own HEALTHCHECK and runs as uid 65532; `serve` and `persist` with the
#     host's network against the Redis and PostgreSQL of INVENTORY_REDIS_URL
#     and INVENTORY_DATABASE_URL (own key prefix, own schema) answer
#     /readyz, take a write, and the persister moves it to PostgreSQL.
#
# Environment: IMAGE (default inventory:verify), GO_VERSION (1.26, the
# Dockerfile's), VERIFY_PORT (first of four free loopback ports for the
# host-network checks, default 18450), INVENTORY_REDIS_URL (default
# redis://127.0.0.1:6379/0), INVENTORY_DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable). Needs
# docker, go, busybox (busybox-static), curl, psql and redis-cli.
set -euo pipefail

cd "$(git rev-parse --show-toplevel)"
IMAGE=${IMAGE:-inventory:verify}
GO_VERSION=${GO_VERSION:-1.26}
PORT=${VERIFY_PORT:-18450}
REDIS_URL=${INVENTORY_REDIS_URL:-redis://127.0.0.1:6379/0}
DB_URL=${INVENTORY_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
GOLANG=golang:${GO_VERSION}-bookworm
DISTROLESS=gcr.io/distroless/static-debian12:nonroot
WORK=$(mktemp -d /tmp/verify-image.XXXXXX)
TAG=v$$
PREFIX=verify-image-$TAG
SCHEMA=verify_image_$TAG
CONTAINERS=()
DOCKERD_PID=

say() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

cleanup() {
	set +e
	for c in "${CONTAINERS[@]}"; do docker rm -f "$c" >/dev/null 2>&1; done
	if [ -n "${PSQL_READY:-}" ]; then
		psql "$DB_URL" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1
	fi
	redis-cli -u "$REDIS_URL" --scan --pattern "$PREFIX*" 2>/dev/null | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null 2>&1
	if [ -n "$DOCKERD_PID" ]; then
		# The images go with the private engine's data root.
		kill "$DOCKERD_PID" 2>/dev/null
		for _ in $(seq 1 30); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 1; done
		# dockerd leaves its network namespace mounted.
		awk -v w="$WORK/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

# 1. An engine.
if ! docker info >/dev/null 2>&1; then
	command -v dockerd >/dev/null || fail "no Docker engine answers and there is no dockerd (apt-get install docker.io)"
	say "starting a private dockerd in $WORK/docker"
	mkdir -p "$WORK/docker"
	export DOCKER_HOST=unix://$WORK/docker/docker.sock
	driver=overlay2
	for driver in overlay2 vfs; do
		rm -rf "$WORK/docker/root"
		dockerd --host "$DOCKER_HOST" --data-root "$WORK/docker/root" --exec-root "$WORK/docker/exec" \
			--pidfile "$WORK/docker/docker.pid" --iptables=false --ip6tables=false --bridge=none \
			--storage-driver="$driver" >"$WORK/docker/dockerd.log" 2>&1 &
		DOCKERD_PID=$!
		for _ in $(seq 1 60); do
			docker info >/dev/null 2>&1 && break
			kill -0 "$DOCKERD_PID" 2>/dev/null || break
			sleep 0.5
		done
		docker info >/dev/null 2>&1 && break
		kill "$DOCKERD_PID" 2>/dev/null; wait "$DOCKERD_PID" 2>/dev/null || true
		DOCKERD_PID=
	done
	[ -n "$DOCKERD_PID" ] || { tail -20 "$WORK/docker/dockerd.log" >&2; fail "dockerd did not start"; }
	say "dockerd runs with the $driver storage driver"
fi

# 2. Stand-ins for the base images.
if ! docker image inspect "$GOLANG" >/dev/null 2>&1; then
	say "making a stand-in for $GOLANG"
	r=$WORK/golang
	mkdir -p "$r/bin" "$r/etc/ssl/certs" "$r/usr/local" "$r/tmp" "$r/root" "$r/go" "$r/goproxy"
	chmod 1777 "$r/tmp"
	cp "$(command -v busybox)" "$r/bin/busybox"
	for b in sh ls cat mkdir rm cp mv env; do ln -s busybox "$r/bin/$b"; done
	cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
	printf 'root:x:0:\n' >"$r/etc/group"
	cp -a "$(go env GOROOT)" "$r/usr/local/go"
	# The modules go.mod needs, as a file proxy: downloaded into an empty
	# cache from this machine's cache (or the usual proxy for any missing).
	GOFLAGS=-mod=mod GOMODCACHE="$WORK/modcache" \
		GOPROXY="file://$(go env GOMODCACHE)/cache/download,$(go env GOPROXY)" go mod download
	cp -a "$WORK/modcache/cache/download/." "$r/goproxy/"
	chmod -R u+w "$WORK/modcache" && rm -rf "$WORK/modcache"
	tar --numeric-owner -C "$r" -cf - . | docker import \
		--change 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV GOPATH=/go' --change 'ENV GOPROXY=file:///goproxy' --change 'ENV GOSUMDB=off' \
		--change 'WORKDIR /go' - "$GOLANG" >/dev/null
fi
if ! docker image inspect "$DISTROLESS" >/dev/null 2>&1; then
	say "making a stand-in for $DISTROLESS"
	r=$WORK/distroless
	mkdir -p "$r/etc/ssl/certs" "$r/tmp" "$r/home/nonroot" "$r/usr/share"
	chmod 1777 "$r/tmp"
	chown 65532:65532 "$r/home/nonroot"
	cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/"
	[ -d /usr/share/zoneinfo ] && cp -a /usr/share/zoneinfo "$r/usr/share/"
	printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$r/etc/passwd"
	printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$r/etc/group"
	tar --numeric-owner -C "$r" -cf - . | docker import \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
		--change 'USER 65532' --change 'WORKDIR /home/nonroot' - "$DISTROLESS" >/dev/null
fi

# 3. The image.
say "building $IMAGE"
mkdir -p "$WORK/ctx"
git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} sh -c '[ -e "{}" ] && printf "%s\0" "{}"' |
	tar --null -T - -cf - | tar -C "$WORK/ctx" -xf -
cp deploy/Dockerfile.dockerignore "$WORK/ctx/.dockerignore"
VERSION=$(git describe --tags --always --dirty 2>/dev/null || echo verify)
DOCKER_BUILDKIT=0 docker build -q --network none -f "$WORK/ctx/deploy/Dockerfile" -t "$IMAGE" \
	--build-arg GO_VERSION="$GO_VERSION" --build-arg VERSION="$VERSION" "$WORK/ctx" >/dev/null

# 4. The checks.
out=$(docker run --rm --network none "$IMAGE" version)
say "version: $out"
grep -q -- "$VERSION" <<<"$out" || fail "version does not report $VERSION"

user=$(docker image inspect -f '{{.Config.User}}' "$IMAGE")
[ "$user" = "65532:65532" ] || fail "the image's user is $user"
for sh in /bin/sh /bin/bash /bin/busybox /usr/bin/sh; do
	if docker run --rm --network none --entrypoint "$sh" "$IMAGE" -c true >/dev/null 2>&1; then
		fail "the image has a shell at $sh"
	fi
done
say "user 65532:65532, no shell"

health() { docker inspect -f '{{.State.Health.Status}}' "$1"; }
wait_healthy() {
	local c=$1 s
	for _ in $(seq 1 90); do
		s=$(health "$c")
		[ "$s" = healthy ] && return 0
		[ "$(docker inspect -f '{{.State.Running}}' "$c")" = true ] || break
		sleep 1
	done
	docker logs "$c" 2>&1 | tail -20 >&2
	fail "$c is $(health "$c"), not healthy"
}

c=verify-embedded-$TAG
CONTAINERS+=("$c")
docker run -d --name "$c" --network none -e INVENTORY_REDIS_URL=embedded -e INVENTORY_DATABASE_URL=off \
	-e INVENTORY_API_KEYS=tok:admin "$IMAGE" serve >/dev/null
wait_healthy "$c"
pid=$(docker inspect -f '{{.State.Pid}}' "$c")
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
[ "$uid" = 65532 ] || fail "serve runs as uid $uid"
say "serve (embedded Redis, no ledger) is healthy by the image's HEALTHCHECK, as uid $uid"

psql "$DB_URL" -qc "CREATE SCHEMA $SCHEMA" >/dev/null
PSQL_READY=1
sep='?'
case "$DB_URL" in *\?*) sep='&' ;; esac
SCHEMA_URL="$DB_URL${sep}search_path=$SCHEMA"
env_common=(-e INVENTORY_REDIS_URL="$REDIS_URL" -e INVENTORY_DATABASE_URL="$SCHEMA_URL"
	-e INVENTORY_REDIS_PREFIX="$PREFIX" -e INVENTORY_PARTITIONS=4 -e INVENTORY_API_KEYS=tok:admin)
c=verify-serve-$TAG
CONTAINERS+=("$c")
docker run -d --name "$c" --network host "${env_common[@]}" -e INVENTORY_ADDR=127.0.0.1:$PORT \
	-e INVENTORY_ADMIN_ADDR=127.0.0.1:$((PORT + 1)) "$IMAGE" serve --persister=false >/dev/null
p=verify-persist-$TAG
CONTAINERS+=("$p")
docker run -d --name "$p" --network host "${env_common[@]}" \
	-e INVENTORY_ADMIN_ADDR=127.0.0.1:$((PORT + 2)) "$IMAGE" persist >/dev/null
ready() { curl -fsS "http://127.0.0.1:$1/readyz" 2>/dev/null; }
for port in $((PORT + 1)) $((PORT + 2)); do
	for _ in $(seq 1 60); do ready "$port" >/dev/null && break; sleep 1; done
	r=$(ready "$port") || { docker logs "$c" 2>&1 | tail; docker logs "$p" 2>&1 | tail; fail "nothing ready on $port"; }
	say "readyz on $port: $r"
done
curl -fsS -X PUT -H 'Authorization: Bearer tok' -H 'Content-Type: application/json' \
	-d '{"on_hand":7}' "http://127.0.0.1:$PORT/v1/stores/s1/items/lamp" >/dev/null
n=0
for _ in $(seq 1 60); do
	n=$(psql "$DB_URL" -tAc "SELECT count(*) FROM $SCHEMA.inventory_events" 2>/dev/null || echo 0)
	[ "$n" -ge 1 ] 2>/dev/null && break
	sleep 1
done
[ "$n" -ge 1 ] 2>/dev/null || { docker logs "$p" 2>&1 | tail -20; fail "the persister wrote no event to PostgreSQL"; }
curl -fsS "http://127.0.0.1:$((PORT + 2))/metrics" | grep -E '^inventory_(build_info|persister_batches_total)' |
	sed 's/^/   persist: /'
say "serve and persist in containers on the host's Redis and PostgreSQL: a write reached the ledger"
say "ok"
