#!/usr/bin/env bash
# A flash sale against the embedded mode: `olive serve` on a fresh data directory (SQLite, local
# objects, memory bus), an admin made with `olive admin create-user`, then `olive bench checkout`:
# one deal of UNITS units, BUYERS shoppers, CONNECTIONS clients ordering for DURATION seconds.
# The server's log is left in /tmp/flash-server.log.
# Usage: bench/flash-sale.sh   (env: UNITS=1000 BUYERS=2000 CONNECTIONS=64 DURATION=10 PORT=18480;
#        DATABASE_URL=postgres://… runs it on PostgreSQL instead of the embedded SQLite;
#        OLIVE=… the server's build, LOADGEN=… the build whose `bench checkout` loads it, OLIVE's own
#        by default: comparing two servers, keep the load generator the same)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/server-env.sh
UNITS=${UNITS:-1000}
BUYERS=${BUYERS:-2000}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10}
PORT=${PORT:-18480}
OLIVE=${OLIVE:-target/release/olive}
LOADGEN=${LOADGEN:-$OLIVE}
[ -x "$OLIVE" ] || cargo build --release -p olive-server
DATA=$(mktemp -d)
STORAGE=(--data-dir "$DATA")
[ -n "${DATABASE_URL:-}" ] && STORAGE+=(--database-url "$DATABASE_URL")
trap 'kill $SERVER 2>/dev/null || true; wait 2>/dev/null || true; cp "$DATA/server.log" /tmp/flash-server.log; rm -rf "$DATA"' EXIT
RUST_LOG=${RUST_LOG:-info,sqlx=warn} "$OLIVE" serve "${STORAGE[@]}" --http "127.0.0.1:$PORT" --rtmp 127.0.0.1:0 >"$DATA/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
"$OLIVE" admin create-user "${STORAGE[@]}" --email bench-admin@example.com --password 'bench admin password' --role admin >/dev/null
OLIVE_BENCH_ADMIN_PASSWORD='bench admin password' "$LOADGEN" bench checkout --url "http://127.0.0.1:$PORT" \
  --admin-email bench-admin@example.com --units "$UNITS" --buyers "$BUYERS" --connections "$CONNECTIONS" \
  --duration "$DURATION" --server-pid "$SERVER" "$@"
