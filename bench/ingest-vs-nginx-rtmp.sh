#!/usr/bin/env bash
# Live ingest, side by side: olive (RTMP → LL-HLS, in memory) and nginx with the RTMP module
# (RTMP → HLS files), each fed the same 720p30 H.264+AAC input by `olive bench publish` at 10, 25
# and 50 channels, one after the other on this machine. Reports CPU (share of one core) and RSS of
# the server, per channel, and olive's server-side LL-HLS latency on channel 1.
#
#   bench/ingest-vs-nginx-rtmp.sh       # needs: cargo build --release; apt-get install ffmpeg nginx libnginx-mod-rtmp
#   COUNTS="10 50" DURATION=60 bench/ingest-vs-nginx-rtmp.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/server-env.sh
. bench/nginx-rtmp.sh

OLIVE="${OLIVE:-${CARGO_TARGET_DIR:-target}/release/olive}"
COUNTS="${COUNTS:-10 25 50}"
DURATION="${DURATION:-40}"
WARMUP="${WARMUP:-10}"
HTTP=127.0.0.1:18401
RTMP=127.0.0.1:19401
for tool in ffmpeg nginx curl python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
[ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] || { echo "missing libnginx-mod-rtmp" >&2; exit 1; }
[ -x "$OLIVE" ] || { echo "missing $OLIVE (cargo build --release)" >&2; exit 1; }

work="$(mktemp -d)"
chmod 755 "$work"
cleanup() {
    [ -n "${olive_pid:-}" ] && kill "$olive_pid" 2>/dev/null || true
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    sleep 0.5
    rm -rf "$work"
}
trap cleanup EXIT

# The input: 20 s of 1280x720 30 fps H.264 (2.5 Mbit/s, B-frames, 2 s GOP) and 128 kbit/s AAC.
ffmpeg -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
    -t 20 -c:v libx264 -preset superfast -b:v 2500k -maxrate 2500k -bufsize 5000k -bf 2 -g 60 -keyint_min 60 \
    -sc_threshold 0 -pix_fmt yuv420p -c:a aac -b:a 128k -f flv "$work/input.flv"

start_olive() {
    rm -rf "$work/data"
    "$OLIVE" serve --demo --data-dir "$work/data" --http "$HTTP" --rtmp "$RTMP" >"$work/olive.log" 2>&1 &
    olive_pid=$!
    for _ in $(seq 100); do curl -sf "http://$HTTP/readyz" >/dev/null && break; sleep 0.1; done
}

olive_keys() { # count -> keys file, channels created through the API as the demo host
    local count=$1 password token
    password=$(awk '$2 == "host@olive.test" {print $3}' "$work/data/demo-accounts.txt")
    token=$(curl -s "http://$HTTP/api/v1/auth/login" -H 'content-type: application/json' \
        -d "{\"email\":\"host@olive.test\",\"password\":\"$password\"}" | python3 -c 'import sys,json; print(json.load(sys.stdin)["token"])')
    : >"$work/keys.txt"
    for i in $(seq "$count"); do
        curl -s "http://$HTTP/api/v1/channels" -H "authorization: Bearer $token" -H 'content-type: application/json' \
            -d "{\"title\":\"bench $i\"}" | python3 -c 'import sys,json; c=json.load(sys.stdin); print(c["id"], c["stream_key"])' >>"$work/keys.txt"
    done
}

report() { # json file -> "cpu% per-channel% rss latency"
    python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = r["server"]
lat = r.get("latency") or {}
print(f'{s["cpu_percent"]:.1f} {s["cpu_percent_per_channel"]:.2f} {s["rss_mib"]:.0f} {lat.get("p50_ms", 0):.0f} {lat.get("p99_ms", 0):.0f} {r["failed"]} {r["max_lag_ms"]:.0f}')
PY
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); $(nginx -v 2>&1)"
echo "olive bench publish, ${DURATION}s per run, measured after ${WARMUP}s; CPU is the share of one core"
echo
echo "| channels | olive CPU | olive CPU/channel | olive RSS | olive LL-HLS latency p50 / p99 | nginx-rtmp CPU | nginx-rtmp CPU/channel | nginx-rtmp RSS |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for n in $COUNTS; do
    start_olive
    olive_keys "$n"
    first=$(head -1 "$work/keys.txt" | cut -d' ' -f1)
    cut -d' ' -f2 "$work/keys.txt" >"$work/olive-keys.txt"
    "$OLIVE" bench publish --rtmp "rtmp://$RTMP/live" --keys-file "$work/olive-keys.txt" --input "$work/input.flv" \
        --duration "$DURATION" --warmup "$WARMUP" --server-pid "$olive_pid" \
        --follow "http://$HTTP/live/$first/index.m3u8" --json >"$work/olive.json"
    read -r o_cpu o_per o_rss o_p50 o_p99 o_failed o_lag <<<"$(report "$work/olive.json")"
    kill "$olive_pid"; wait "$olive_pid" 2>/dev/null || true; olive_pid=

    start_nginx_rtmp
    seq -f "bench%g" "$n" >"$work/nginx-keys.txt"
    workers=$(pgrep -d, -P "$(cat "$work/nginx.pid")")
    "$OLIVE" bench publish --rtmp "rtmp://$RTMP/live" --keys-file "$work/nginx-keys.txt" --input "$work/input.flv" \
        --duration "$DURATION" --warmup "$WARMUP" --server-pid "$(cat "$work/nginx.pid"),$workers" --json >"$work/nginx.json"
    read -r n_cpu n_per n_rss _ _ n_failed n_lag <<<"$(report "$work/nginx.json")"
    kill "$(cat "$work/nginx.pid")"; sleep 1; rm -f "$work/nginx.pid"
    [ "$o_failed" = 0 ] && [ "$n_failed" = 0 ] || { echo "publishers failed: olive $o_failed, nginx $n_failed" >&2; exit 1; }
    echo "| $n | ${o_cpu} % | ${o_per} % | ${o_rss} MiB | ${o_p50} / ${o_p99} ms | ${n_cpu} % | ${n_per} % | ${n_rss} MiB |"
    echo "  publisher lag: olive run ${o_lag} ms, nginx run ${n_lag} ms" >&2
done
