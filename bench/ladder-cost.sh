#!/usr/bin/env bash
# What a live costs, side by side in one run, with ffmpeg as the publisher (`-re -stream_loop -1
# -c copy`, as OBS sends a stream): a 720p30 2.5 Mbit/s clip with B-frames and AAC into
#
#   1. olive, `basic` channels, thumbnails every 5 s (the default);
#   2. olive, `basic` channels, thumbnails every 300 s (the longest interval: as good as off);
#   3. nginx with the RTMP module, HLS on (the peer);
#   4. olive, `standard` channels: the ladder (480p/360p/160p by default from 720p), its encoder
#      processes counted with the server;
#   5. ffmpeg + x264 `-preset veryfast` making the same rungs at the same bit rates from the
#      same stream, one process per channel (the reference the issue names).
#
# CPU is the share of one core over DURATION seconds after WARMUP, read from /proc for the
# server's process and all its descendants (utime + stime), divided by the channels. Basic runs
# use BASIC channels (10), the ladder runs STANDARD (the node's measured transcode slots, 3 here).
#
#   bench/ladder-cost.sh     # needs: cargo build --release; apt-get install ffmpeg nginx-light libnginx-mod-rtmp
#   BASIC=10 STANDARD=3 DURATION=60 bench/ladder-cost.sh
#   RUNS=standard bench/ladder-cost.sh      # only the ladder against its reference
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/server-env.sh
. bench/nginx-rtmp.sh

OLIVE="${OLIVE:-${CARGO_TARGET_DIR:-target}/release/olive}"
BASIC="${BASIC:-10}"
STANDARD="${STANDARD:-3}"
DURATION="${DURATION:-60}"
WARMUP="${WARMUP:-15}"
RUNS="${RUNS:-basic nginx standard}"  # which comparisons to run
want() { [[ " $RUNS " == *" $1 "* ]]; }
HTTP=127.0.0.1:18402
RTMP=127.0.0.1:19402
for tool in ffmpeg nginx curl python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
[ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] || { echo "missing libnginx-mod-rtmp" >&2; exit 1; }
[ -x "$OLIVE" ] || { echo "missing $OLIVE (cargo build --release)" >&2; exit 1; }

work="$(mktemp -d)"
chmod 755 "$work"
publishers=()
cleanup() {
    stop_publishers
    [ -n "${olive_pid:-}" ] && kill "$olive_pid" 2>/dev/null || true
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    sleep 0.5
    rm -rf "$work"
}
stop_publishers() {
    for p in "${publishers[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${publishers[@]}"; do wait "$p" 2>/dev/null || true; done
    publishers=()
}
trap cleanup EXIT

# The input: 20 s of 1280x720 30 fps H.264 (2.5 Mbit/s, B-frames, 2 s GOP) and 128 kbit/s AAC, a
# test pattern with grain so that every rung spends its bit rate.
ffmpeg -v error -y -f lavfi -i "testsrc2=size=1280x720:rate=30,noise=alls=8:allf=t" \
    -f lavfi -i sine=frequency=440:sample_rate=48000 \
    -t 20 -c:v libx264 -preset superfast -b:v 2500k -maxrate 2500k -bufsize 5000k -bf 2 -g 60 -keyint_min 60 \
    -sc_threshold 0 -pix_fmt yuv420p -c:a aac -b:a 128k -f flv "$work/input.flv"

publish() { # url
    ffmpeg -v error -re -stream_loop -1 -i "$work/input.flv" -c copy -f flv "$1" </dev/null >/dev/null 2>&1 &
    publishers+=($!)
}

tree_ticks() { # pid -> utime+stime of the process and its descendants, in clock ticks
    python3 - "$1" <<'PY'
import os, sys
root = int(sys.argv[1])
stats = {}
for name in os.listdir('/proc'):
    if not name.isdigit():
        continue
    try:
        raw = open(f'/proc/{name}/stat').read()
    except OSError:
        continue
    fields = raw[raw.rindex(')') + 2:].split()
    stats[int(name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
children = {}
for pid, (ppid, _) in stats.items():
    children.setdefault(ppid, []).append(pid)
total, todo = 0, [root]
while todo:
    pid = todo.pop()
    if pid in stats:
        total += stats[pid][1]
    todo.extend(children.get(pid, []))
print(total)
PY
}

measure() { # pid channels -> "cpu% per-channel%" over DURATION after WARMUP
    local pid=$1 channels=$2 hz before after
    hz=$(getconf CLK_TCK)
    sleep "$WARMUP"
    before=$(tree_ticks "$pid")
    sleep "$DURATION"
    after=$(tree_ticks "$pid")
    python3 -c "t=($after-$before)/$hz/$DURATION*100; print(f'{t:.1f} {t/$2:.2f}')"
}

start_olive() { # extra args...
    rm -rf "$work/data"
    "$OLIVE" serve --demo --data-dir "$work/data" --http "$HTTP" --rtmp "$RTMP" "$@" >"$work/olive.log" 2>&1 &
    olive_pid=$!
    for _ in $(seq 300); do curl -sf "http://$HTTP/readyz" >/dev/null && break; sleep 0.1; done
    # The node measures its transcode slots at start (a few seconds): lives before that get one.
    for _ in $(seq 300); do grep -q "transcode slots measured" "$work/olive.log" && break; sleep 0.1; done
    token=$(demo_host_token "$work/data" "$HTTP")
}

olive_channels() { # count type thumbnail-interval -> publishes to each
    local count=$1 type=$2 interval=$3 id key
    for i in $(seq "$count"); do
        read -r id key < <(new_channel "$HTTP" "$token" "bench $i")
        curl -sf -X PATCH "http://$HTTP/api/v1/channels/$id" -H "authorization: Bearer $token" \
            -H 'content-type: application/json' -d "{\"type\":\"$type\",\"thumbnail_interval_s\":$interval}" >/dev/null
        publish "rtmp://$RTMP/live/$key"
        echo "$id" >>"$work/ids.txt"
    done
}

stop_olive() {
    stop_publishers
    kill "$olive_pid"; wait "$olive_pid" 2>/dev/null || true; olive_pid=
}

ladder_state() { # -> how many of the channels run a ladder, and the fallbacks
    local running=0 id
    while read -r id; do
        curl -s "http://$HTTP/api/v1/channels/$id" -H "authorization: Bearer $token" |
            python3 -c 'import sys,json; l=json.load(sys.stdin).get("ladder") or {}; sys.exit(0 if l.get("running") else 1)' &&
            running=$((running + 1))
    done <"$work/ids.txt"
    echo "$running"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); $(nginx -v 2>&1); $(ffmpeg -version | head -1)"
echo "ffmpeg publishers (-re -stream_loop -1 -c copy), ${DURATION}s per run after ${WARMUP}s; CPU is the share of one core, the server and its child processes"
echo

if want basic; then
: >"$work/ids.txt"
start_olive
olive_channels "$BASIC" basic 5
read -r b5_cpu b5_per <<<"$(measure "$olive_pid" "$BASIC")"
stop_olive

: >"$work/ids.txt"
start_olive
olive_channels "$BASIC" basic 300
read -r b0_cpu b0_per <<<"$(measure "$olive_pid" "$BASIC")"
stop_olive

fi

if want nginx; then
start_nginx_rtmp
for i in $(seq "$BASIC"); do publish "rtmp://$RTMP/live/bench$i"; done
read -r n_cpu n_per <<<"$(measure "$(cat "$work/nginx.pid")" "$BASIC")"
stop_publishers
kill "$(cat "$work/nginx.pid")"; sleep 1; rm -f "$work/nginx.pid"
fi

if want standard; then
: >"$work/ids.txt"
start_olive
olive_channels "$STANDARD" standard 5
read -r s_cpu s_per <<<"$(measure "$olive_pid" "$STANDARD")"
ladders=$(ladder_state)
slots=$(grep -o 'slots=[0-9]*' "$work/olive.log" | tail -1 | cut -d= -f2)
stop_olive

# The reference: one ffmpeg per channel reading the published stream's file at its pace and making
# the same rungs (the ladder's defaults below 720p) with x264 veryfast.
reference=()
for i in $(seq "$STANDARD"); do
    ffmpeg -v error -re -stream_loop -1 -i "$work/input.flv" -filter_complex \
        "[0:v]split=3[a][b][c];[a]scale=854:480[o0];[b]scale=640:360[o1];[c]fps=15,scale=284:160[o2]" \
        -map '[o0]' -c:v libx264 -preset veryfast -b:v 1200k -maxrate 1200k -bufsize 1200k -f null - \
        -map '[o1]' -c:v libx264 -preset veryfast -b:v 700k -maxrate 700k -bufsize 700k -f null - \
        -map '[o2]' -c:v libx264 -preset veryfast -b:v 250k -maxrate 250k -bufsize 250k -f null - </dev/null &
    reference+=($!)
done
sleep "$WARMUP"
ref_before=0; for p in "${reference[@]}"; do ref_before=$((ref_before + $(tree_ticks "$p"))); done
sleep "$DURATION"
ref_after=0; for p in "${reference[@]}"; do ref_after=$((ref_after + $(tree_ticks "$p"))); done
for p in "${reference[@]}"; do kill "$p" 2>/dev/null || true; done
read -r r_cpu r_per <<<"$(python3 -c "t=($ref_after-$ref_before)/$(getconf CLK_TCK)/$DURATION*100; print(f'{t:.1f} {t/$STANDARD:.2f}')")"
fi

echo "| run | channels | CPU | CPU per channel | vs peer |"
echo "| --- | ---: | ---: | ---: | ---: |"
ratio() { python3 -c "print(f'{$1/$2:.2f}x')"; }
if want basic && want nginx; then
    echo "| olive basic, thumbnails every 5 s | $BASIC | ${b5_cpu} % | ${b5_per} % | $(ratio "$b5_per" "$n_per") nginx-rtmp |"
    echo "| olive basic, thumbnails every 300 s | $BASIC | ${b0_cpu} % | ${b0_per} % | $(ratio "$b0_per" "$n_per") nginx-rtmp |"
    echo "| nginx-rtmp, HLS on | $BASIC | ${n_cpu} % | ${n_per} % | |"
fi
if want standard; then
    echo "| olive standard (ladder running on $ladders of $STANDARD; node slots $slots) | $STANDARD | ${s_cpu} % | ${s_per} % | $(ratio "$s_per" "$r_per") reference |"
    echo "| ffmpeg + x264 veryfast, same rungs | $STANDARD | ${r_cpu} % | ${r_per} % | |"
fi
