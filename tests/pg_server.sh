#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for the database tests (used by .ci/run).
#   tests/pg_server.sh start   install Debian's server if missing (root + apt), initdb, start
#   tests/pg_server.sh url     print the SQLAlchemy URL of its admin database
#   tests/pg_server.sh stop    stop it and delete its data directory
set -u
PORT=${QRELS_PG_PORT:-55432}
STATE=${QRELS_PG_STATE:-/tmp/qrels-test-pg}

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

as_owner() {  # PostgreSQL refuses to run as root: run as the postgres user then
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
start)
    BIN=$(find_bin)
    if [ -z "$BIN" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing Debian's postgresql for the database tests"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) || exit 1
        BIN=$(find_bin)
    fi
    [ -n "$BIN" ] && [ -x "$BIN/initdb" ] || { echo "no PostgreSQL server binaries"; exit 1; }
    "$0" stop >/dev/null 2>&1
    mkdir -p "$STATE"
    [ "$(id -u)" = 0 ] && chown postgres "$STATE"
    as_owner "$BIN/initdb" -D "$STATE/data" -A trust -U postgres >"$STATE/initdb.log" 2>&1 || { cat "$STATE/initdb.log"; exit 1; }
    # Durability settings off: a test server, thrown away afterwards.
    as_owner "$BIN/pg_ctl" -D "$STATE/data" -l "$STATE/server.log" -w -t 60 \
        -o "-p $PORT -c listen_addresses=127.0.0.1 -k $STATE -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
        start >/dev/null || { cat "$STATE/server.log"; exit 1; }
    ;;
url)
    echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
    ;;
stop)
    BIN=$(find_bin)
    if [ -n "$BIN" ] && [ -d "$STATE/data" ]; then
        as_owner "$BIN/pg_ctl" -D "$STATE/data" -m fast -w stop >/dev/null 2>&1
    fi
    rm -rf "$STATE"
    ;;
*)
    echo "usage: $0 start|url|stop" >&2; exit 2
    ;;
esac
