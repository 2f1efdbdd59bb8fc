#!/usr/bin/env bash
# A flamegraph of `olive serve --demo` answering one hot read under wrk: perf samples the server's
# threads (user and kernel stacks, DWARF unwinding through the release build's line tables) while
# wrk keeps the path busy, and inferno folds and draws them.
#
#   bench/flamegraph.sh [PATH] [OUT.svg]      # needs: cargo build --release; apt-get install wrk linux-perf;
#                                             #        cargo install inferno
#   PIPELINE=8 bench/flamegraph.sh /api/v1/channels    # pipelined requests (wrk script)
set -euo pipefail
cd "$(dirname "$0")/.."

path="${1:-/api/v1/products/1}"
out="${2:-bench/results/flamegraphs/$(echo "${path#/}" | tr '/' '-')${PIPELINE:+-pipelined}.svg}"
. bench/olive-demo.sh
SECONDS_SAMPLED="${SECONDS_SAMPLED:-6}"
ADDR=127.0.0.1:18183
need wrk perf inferno-collapse-perf inferno-flamegraph curl
start_olive_demo "$ADDR" 127.0.0.1:0
curl -sf "http://$ADDR$path" >/dev/null || { echo "$path does not answer 200" >&2; exit 1; }

script=()
[ -n "${PIPELINE:-}" ] && script=(-s bench/wrk-pipeline.lua)
wrk -t2 -c64 -d$((SECONDS_SAMPLED + 4))s "${script[@]}" "http://$ADDR$path" >"$work/wrk.txt" &
wrk_pid=$!
sleep 2
perf record -F 999 -g --call-graph dwarf,16384 -p "$olive_pid" -o "$work/perf.data" -- sleep "$SECONDS_SAMPLED" 2>/dev/null
wait "$wrk_pid"
perf script -i "$work/perf.data" 2>/dev/null | inferno-collapse-perf >"$work/folded"
mkdir -p "$(dirname "$out")"
inferno-flamegraph --minwidth 2 --title "olive serve: GET $path under wrk${PIPELINE:+ (pipelined $PIPELINE)}" <"$work/folded" >"$out"
echo "wrk (while sampled, so slower than unsampled): $(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt") req/s"
echo "flamegraph: $out"
