#!/usr/bin/env bash
# One channel's live room with its viewers on two nodes that share PostgreSQL and Redis, for rooms
# larger than one process may hold sockets for (where `ulimit -Hn` is 20,000): node A and node B each
# get VIEWERS/2 viewers from a bench process of their own; the chatters talk on node A, so every
# message crosses Redis to reach node B's half. Needs PostgreSQL (createdb) and Redis on loopback.
# Usage: bench/chat-fanout-two-nodes.sh   (env: VIEWERS=20000 CHATTERS=120 RATE=100 DURATION=20
#        PORT=18510 PGURL=postgres://postgres@127.0.0.1:5432 REDIS=redis://127.0.0.1:6379)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/server-env.sh
VIEWERS=${VIEWERS:-20000}
CHATTERS=${CHATTERS:-120}
RATE=${RATE:-100}
DURATION=${DURATION:-20}
PORT=${PORT:-18510}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
REDIS=${REDIS:-redis://127.0.0.1:6379}
OLIVE=${OLIVE:-target/release/olive}
[ -x "$OLIVE" ] || cargo build --release -p olive-server
HALF=$((VIEWERS / 2))
DB="olive_bench_$$"
createdb --maintenance-db="$PGURL/postgres" "$DB"
A_DIR=$(mktemp -d)
B_DIR=$(mktemp -d)
cleanup() {
    kill "$A" "$B" 2>/dev/null || true
    wait 2>/dev/null || true
    dropdb --maintenance-db="$PGURL/postgres" "$DB" 2>/dev/null || true
    rm -rf "$A_DIR" "$B_DIR"
}
trap cleanup EXIT
common=(--database-url "$PGURL/$DB" --bus-url "$REDIS#bench-$$" --rtmp 127.0.0.1:0)
"$OLIVE" serve --demo --data-dir "$A_DIR" --http "127.0.0.1:$PORT" --node-id bench-a "${common[@]}" >"$A_DIR/log" 2>&1 &
A=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
"$OLIVE" serve --data-dir "$B_DIR" --http "127.0.0.1:$((PORT + 1))" --node-id bench-b "${common[@]}" >"$B_DIR/log" 2>&1 &
B=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$((PORT + 1))/readyz" >/dev/null && break; sleep 0.1; done
RUN="two-nodes-$$"
# Node B's half listens for the whole run; it connects first.
"$OLIVE" bench chat --url "http://127.0.0.1:$((PORT + 1))" --channel 1 --viewers "$HALF" --chatters 0 \
  --run-id "$RUN" --duration $((DURATION + 60)) --server-pid "$B" >"$B_DIR/report" 2>&1 &
LISTENER=$!
sleep 25
echo "== node A: $HALF viewers and the chatters"
"$OLIVE" bench chat --url "http://127.0.0.1:$PORT" --channel 1 --viewers "$HALF" --chatters "$CHATTERS" \
  --rate "$RATE" --duration "$DURATION" --run-id "$RUN" --server-pid "$A"
wait "$LISTENER"
echo "== node B: $HALF viewers, listening"
cat "$B_DIR/report"
