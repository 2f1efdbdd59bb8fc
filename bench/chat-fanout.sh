#!/usr/bin/env bash
# One channel's live room under load: `olive serve --demo` on a fresh data directory, then
# `olive bench chat` with VIEWERS sockets (over 16 loopback source addresses) and CHATTERS accounts
# sending RATE messages a second in total for DURATION seconds.
# Usage: bench/chat-fanout.sh   (env: VIEWERS=10000 CHATTERS=120 RATE=100 DURATION=20 PORT=18500)
# The server and the load generator each need a file descriptor per viewer (check `ulimit -n`).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/server-env.sh
VIEWERS=${VIEWERS:-10000}
CHATTERS=${CHATTERS:-120}
RATE=${RATE:-100}
DURATION=${DURATION:-20}
PORT=${PORT:-18500}
OLIVE=${OLIVE:-target/release/olive}
[ -x "$OLIVE" ] || cargo build --release -p olive-server
DATA=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DATA"' EXIT
${SERVER_CPUS:+taskset -c $SERVER_CPUS} "$OLIVE" serve --demo --data-dir "$DATA" --http "127.0.0.1:$PORT" --rtmp 127.0.0.1:0 >"$DATA/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
${BENCH_CPUS:+taskset -c $BENCH_CPUS} "$OLIVE" bench chat --url "http://127.0.0.1:$PORT" --channel 1 --viewers "$VIEWERS" \
  --chatters "$CHATTERS" --rate "$RATE" --duration "$DURATION" --server-pid "$SERVER" "$@"
