#!/usr/bin/env bash
# FerretDB v1 (MongoDB wire protocol) for local runs and tests.
#   ferretdb.sh fetch                 build the pinned binary into the cache (once)
#   ferretdb.sh start DATA_DIR PORT   start in the background, wait until it answers
#   ferretdb.sh stop DATA_DIR [--purge]  stop what start started (--purge: delete its data)
# Backend: LEXCARE_FERRETDB_BACKEND=postgresql (default, measured faster) or sqlite.
set -euo pipefail

FERRETDB_VERSION="${LEXCARE_FERRETDB_VERSION:-v1.24.0}"
CACHE="${LEXCARE_CACHE:-$HOME/.cache/lexcare}"
BIN="$CACHE/ferretdb-$FERRETDB_VERSION/ferretdb"
BACKEND="${LEXCARE_FERRETDB_BACKEND:-postgresql}"
PG_BIN="${LEXCARE_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
HERE="$(cd "$(dirname "$0")" && pwd)"

log() { echo "[ferretdb] $*" >&2; }

fetch() {
  [ -x "$BIN" ] && return 0
  command -v go >/dev/null || { log "go is required to build FerretDB"; exit 1; }
  log "building FerretDB $FERRETDB_VERSION (once, cached in $CACHE)"
  local src work
  # v1 embeds build/version/version.txt; a plain `go install` panics at start without it.
  src="$(go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  work="$(mktemp -d)"
  cp -r "$src/." "$work/"
  chmod -R u+w "$work"
  echo "$FERRETDB_VERSION" > "$work/build/version/version.txt"
  mkdir -p "$(dirname "$BIN")"
  (cd "$work" && CGO_ENABLED=0 go build -trimpath -o "$BIN.tmp" ./cmd/ferretdb)
  mv "$BIN.tmp" "$BIN"
  rm -rf "$work"
}

ensure_postgres() {
  if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/postgres" ]; then
    log "installing PostgreSQL from Debian's packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  fi
}

# PostgreSQL refuses to run as root: run it as the postgres user when we are root.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

wait_port() {
  local port=$1 what=$2 deadline=$((SECONDS + ${3:-60}))
  until python3 "$HERE/wait_port.py" 127.0.0.1 "$port"; do
    [ $SECONDS -lt $deadline ] || { log "$what did not answer on port $port"; return 1; }
    sleep 0.2
  done
}

# PostgreSQL keeps DATA_DIR's files under DATA_DIR: deleting DATA_DIR resets everything.
pg_dir() {
  echo "$1/pg"
}

short_hash() {
  echo -n "$1" | sha256sum | cut -c1-16
}

# Where PostgreSQL's unix socket lives: next to its data, unless that socket path would pass
# the ~107-byte limit of unix socket paths; then a directory of its own under /tmp.
pg_socket_dir() {
  local LC_ALL=C pg; pg="$(pg_dir "$1")"
  if [ ${#pg} -le 90 ]; then echo "$pg"; else echo "/tmp/lexcare-pg-$(short_hash "$1")"; fi
}

# Where earlier versions kept PostgreSQL's data as root: stopped and purged with DATA_DIR.
legacy_pg_dir() {
  if [ "$(id -u)" = 0 ]; then echo "/var/tmp/lexcare-pg/$(short_hash "$1")"; fi
}

# As root, PostgreSQL runs as the postgres user, which must reach its data: let it traverse
# (o+x: enter, not list) each parent it cannot, e.g. /root or a mkdtemp directory.
let_postgres_reach() {
  local path="" part parts
  IFS=/ read -ra parts <<< "${1#/}"
  for part in "${parts[@]}"; do
    [ -n "$part" ] || continue
    path="$path/$part"
    if ! runuser -u postgres -- test -x "$path"; then
      log "letting the postgres user traverse $path (chmod o+x)"
      chmod o+x "$path"
    fi
  done
}

# PostgreSQL listens only on a unix socket: no TCP port to clash.
start_postgres() {
  local dir=$1
  local pg sock; pg="$(pg_dir "$dir")"; sock="$(pg_socket_dir "$dir")"
  ensure_postgres
  mkdir -p "$pg" "$sock"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown -R postgres "$pg" "$sock"; chmod 700 "$pg" "$sock"
    let_postgres_reach "$pg"
  fi
  if [ ! -f "$pg/data/PG_VERSION" ]; then
    as_pg "$PG_BIN/initdb" -D "$pg/data" -U postgres --auth=trust -E UTF8 >/dev/null
    # Single-node scratch database: durability comes from Kafka replay, not fsync.
    cat >> "$pg/data/postgresql.conf" <<EOF
listen_addresses = ''
fsync = ${LEXCARE_PG_FSYNC:-on}
synchronous_commit = off
full_page_writes = off
max_connections = 300
shared_buffers = 256MB
EOF
  fi
  # The socket directory is given at each start: the run directory may have moved.
  local options="-k '$sock'"
  # FerretDB keeps each document as one jsonb value: lz4 (de)compresses the large ones
  # (batches, snapshots) in less CPU than PostgreSQL's default pglz, where the build has it.
  if ldd "$PG_BIN/postgres" 2>/dev/null | grep -q liblz4; then
    options="$options -c default_toast_compression=lz4"
  fi
  as_pg "$PG_BIN/pg_ctl" -D "$pg/data" -l "$pg/postgres.log" -o "$options" -w start >/dev/null
  as_pg "$PG_BIN/psql" -h "$sock" -U postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname='ferretdb'" | grep -q 1 \
    || as_pg "$PG_BIN/createdb" -h "$sock" -U postgres ferretdb
}

start() {
  local dir=$1 port=${2:-27017}
  fetch
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if [ -f "$dir/ferretdb.pid" ] && kill -0 "$(cat "$dir/ferretdb.pid")" 2>/dev/null; then
    log "already running (pid $(cat "$dir/ferretdb.pid"))"
    return 0
  fi
  if python3 "$HERE/wait_port.py" 127.0.0.1 "$port"; then
    log "port $port is already in use by another process"; exit 1
  fi
  # --debug-addr=-: no debug HTTP listener (its fixed default port clashes between instances).
  local args=(--listen-addr="127.0.0.1:$port" --state-dir="$dir" --telemetry=disable --debug-addr=-
              --log-level="${LEXCARE_FERRETDB_LOG_LEVEL:-warn}")
  if [ "$BACKEND" = postgresql ]; then
    start_postgres "$dir"
    args+=(--handler=postgresql
           # FerretDB's default pool of 50 can be exhausted by many clients and then stall.
           --postgresql-url="postgres://postgres@/ferretdb?host=$(pg_socket_dir "$dir")&pool_max_conns=250")
  else
    mkdir -p "$dir/sqlite"
    args+=(--handler=sqlite --sqlite-url="file:$dir/sqlite/")
  fi
  echo "$BACKEND" > "$dir/backend"
  nohup "$BIN" "${args[@]}" >"$dir/ferretdb.log" 2>&1 &
  echo $! > "$dir/ferretdb.pid"
  wait_port "$port" FerretDB 60 || { tail -n 20 "$dir/ferretdb.log" >&2; stop "$dir"; exit 1; }
  log "ready on 127.0.0.1:$port ($BACKEND backend, data in $dir)"
}

stop() {
  local dir=$1 purge=${2:-}
  [ ! -d "$dir" ] || dir="$(cd "$dir" && pwd)"
  if [ -f "$dir/ferretdb.pid" ]; then
    local pid; pid="$(cat "$dir/ferretdb.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/ferretdb.pid"
  fi
  local pg legacy; legacy="$(legacy_pg_dir "$dir")"
  for pg in "$(pg_dir "$dir")" ${legacy:+"$legacy"}; do
    if [ -f "$pg/data/postmaster.pid" ]; then
      ensure_postgres
      as_pg "$PG_BIN/pg_ctl" -D "$pg/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
  done
  if [ "$purge" = --purge ]; then
    rm -rf "$dir" "$(pg_socket_dir "$dir")" ${legacy:+"$legacy"}
  fi
}

case "${1:-}" in
  fetch) fetch ;;
  start) start "${2:?data dir}" "${3:-27017}" ;;
  stop) stop "${2:?data dir}" "${3:-}" ;;
  *) echo "usage: $0 fetch | start DATA_DIR [PORT] | stop DATA_DIR [--purge]" >&2; exit 2 ;;
esac
