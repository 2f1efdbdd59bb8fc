#!/usr/bin/env bash
# Two builds side by side in one sitting, alternating ROUNDS times so drift hits both alike:
#   - `olive bench checkout` (a flash sale through bench/flash-sale.sh, a fresh data dir each time);
#   - `olive bench http` against a fresh `olive serve --demo` (its default read paths).
# Each run's summary lines are printed with the build's name; the full outputs stay in OUT. Both
# servers are loaded by one load generator (LOADGEN, the new build's by default): the generator
# shares the machine's cores with the server, so a generator that changed would move the figures.
# Usage: BEFORE=/path/to/old/olive AFTER=/path/to/new/olive bench/before-after.sh
#        (env: ROUNDS=3 DURATION=8 OUT=$(mktemp -d); flash-sale.sh's UNITS, BUYERS, CONNECTIONS)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BEFORE:?name the old build's olive binary}" "${AFTER:?name the new build's olive binary}"
LOADGEN=${LOADGEN:-$AFTER}
export LOADGEN
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
. bench/server-env.sh
# No ladder encoding (and no measuring of slots) and metrics on a free port, for a build that has
# them; a build from before them ignores the variables.
export OLIVE_TRANSCODE_SLOTS=0 OLIVE_METRICS_ADDR=127.0.0.1:0

http_round() { # NAME BINARY
    local data port=18490 pid
    data="$(mktemp -d)"
    "$2" serve --demo --data-dir "$data" --http "127.0.0.1:$port" --rtmp 127.0.0.1:0 >"$data/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
    "$LOADGEN" bench http --url "http://127.0.0.1:$port" --duration "$DURATION" >"$OUT/http-$1-$round.txt" 2>&1 || true
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$data"
}

for round in $(seq "$ROUNDS"); do
    for build in before after; do
        binary=$([ "$build" = before ] && echo "$BEFORE" || echo "$AFTER")
        OLIVE="$binary" DURATION="$DURATION" bench/flash-sale.sh >"$OUT/checkout-$build-$round.txt" 2>&1 || true
        http_round "$build" "$binary"
        echo "== round $round, $build ($binary)"
        grep -E "^units |^latency|^server:" "$OUT/checkout-$build-$round.txt" | sed 's/^/checkout: /'
        grep -E "^/|^path " "$OUT/http-$build-$round.txt" | sed 's/^/http: /'
    done
done
echo "outputs in $OUT"
