#!/usr/bin/env bash
# Hot reads, side by side: `olive serve --demo` answering GET /api/v1/channels and
# GET /api/v1/products/1 from its in-memory cache, against nginx serving the very same bytes as static
# files, both measured with wrk in one run on this machine: one request in flight per connection
# (plain keep-alive), then HTTP/1.1 pipelining (PIPELINE requests sent back to back per connection,
# bench/wrk-pipeline.lua). Then `olive bench http` loads the whole read path (home feed too) for
# comparison with wrk. Also reports olive's idle RSS.
#
#   bench/http-vs-nginx.sh            # needs: cargo build --release; apt-get install wrk nginx
#   DURATION=30 CONNECTIONS=128 ROUNDS=5 PIPELINE=16 bench/http-vs-nginx.sh
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/olive-demo.sh
DURATION="${DURATION:-15}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
ROUNDS="${ROUNDS:-3}"   # olive and nginx alternate; the median round is reported
export PIPELINE="${PIPELINE:-8}"
OLIVE_ADDR=127.0.0.1:18181
NGINX_ADDR=127.0.0.1:18182
need wrk nginx curl
before_cleanup() { [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; }
start_olive_demo "$OLIVE_ADDR" 127.0.0.1:0

paths=(/api/v1/channels /api/v1/products/1)
mkdir -p "$work/www/api/v1/products"
for p in "${paths[@]}"; do curl -sf "http://$OLIVE_ADDR$p" -o "$work/www$p"; done
chmod -R a+rX "$work"  # nginx workers run unprivileged

cat >"$work/nginx.conf" <<CONF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    open_file_cache max=100;
    server {
        listen $NGINX_ADDR;
        root $work/www;
        default_type application/json;
        location / { try_files \$uri =404; }
    }
}
CONF
nginx -c "$work/nginx.conf" -p "$work"
sleep 0.5

# Idle RSS: after start-up, demo seeding and a few seconds of quiet.
sleep 5
idle_rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$olive_pid/status")

run_wrk() { # url [wrk options…] -> "req/s p50 p99 non-2xx"
    local url="$1"
    shift
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "$url" | awk '
        /Requests\/sec/ {rps=$2}
        /^ +50%/ {p50=$2}
        /^ +99%/ {p99=$2}
        /Non-2xx/ {bad=$NF}
        END {printf "%s %s %s %s\n", rps, p50, p99, (bad==""?0:bad)}'
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds alternating olive and nginx on the same machine; medians"
echo "(pipelined: $PIPELINE requests per batch; wrk times a batch, so its latency is the whole batch's)"
echo
echo "| path | requests | olive req/s | olive p50 | olive p99 | nginx req/s | nginx p50 | nginx p99 | olive / nginx |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
median() { sort -g | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'; }
for p in "${paths[@]}"; do
    cmp -s <(curl -s "http://$OLIVE_ADDR$p") <(curl -s "http://$NGINX_ADDR$p") || { echo "bodies differ for $p" >&2; exit 1; }
  for mode in plain pipelined; do
    opts=()
    [ "$mode" = pipelined ] && opts=(-s bench/wrk-pipeline.lua)
    : >"$work/olive.runs"; : >"$work/nginx.runs"
    for _ in $(seq "$ROUNDS"); do
        run_wrk "http://$OLIVE_ADDR$p" "${opts[@]}" >>"$work/olive.runs"
        run_wrk "http://$NGINX_ADDR$p" "${opts[@]}" >>"$work/nginx.runs"
    done
    if awk '$4 != 0 {bad=1} END {exit !bad}' "$work/olive.runs" "$work/nginx.runs"; then
        echo "non-2xx answers during $p" >&2; exit 1
    fi
    # The round with the median throughput, with its own latencies.
    o_rps=$(cut -d' ' -f1 "$work/olive.runs" | median); read -r _ o_p50 o_p99 _ <<<"$(grep "^$o_rps " "$work/olive.runs" | head -1)"
    n_rps=$(cut -d' ' -f1 "$work/nginx.runs" | median); read -r _ n_p50 n_p99 _ <<<"$(grep "^$n_rps " "$work/nginx.runs" | head -1)"
    ratio=$(awk -v a="$o_rps" -v b="$n_rps" 'BEGIN {printf "%.2f", a/b}')
    label="one in flight"
    [ "$mode" = pipelined ] && label="pipelined ×$PIPELINE"
    echo "| \`GET $p\` | $label | $o_rps | $o_p50 | $o_p99 | $n_rps | $n_p50 | $n_p99 | ${ratio}× |"
    echo "  olive rounds: $(cut -d' ' -f1 "$work/olive.runs" | tr '\n' ' ') nginx rounds: $(cut -d' ' -f1 "$work/nginx.runs" | tr '\n' ' ')" >&2
  done
done
echo
echo "olive bench http (one request in flight per connection, $CONNECTIONS connections, ${DURATION} s per path):"
echo
echo '```'
"$OLIVE" bench http --url "http://$OLIVE_ADDR" --connections "$CONNECTIONS" --duration "$DURATION" \
    --path /api/v1/feed,/api/v1/channels,/api/v1/products/1 --server-pid "$olive_pid"
echo '```'
echo
echo "olive serve --demo idle RSS: $((idle_rss_kib / 1024)) MiB ($idle_rss_kib KiB)"
