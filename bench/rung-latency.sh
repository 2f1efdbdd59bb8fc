#!/usr/bin/env bash
# The latency a transcoded rung adds over the source rung, as a shopper's player sees it: olive with
# one transcode slot, one `standard` live published by ffmpeg (720p30, B-frames, 2 s keyframes), and
# the web app's hls.js in Chromium choosing each rendition in turn and reporting how far its picture
# is behind the wall clock (EXT-X-PROGRAM-DATE-TIME, which every rung shares with the source).
#
#   bench/rung-latency.sh     # needs: cargo build --release; apt-get install ffmpeg chromium; npm ci in web/
#   SECONDS_PER_RUNG=60 bench/rung-latency.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/server-env.sh

OLIVE="${OLIVE:-${CARGO_TARGET_DIR:-target}/release/olive}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
SECONDS_PER_RUNG="${SECONDS_PER_RUNG:-30}"
HTTP=127.0.0.1:18403
RTMP=127.0.0.1:19403
[ -x "$OLIVE" ] || { echo "missing $OLIVE (cargo build --release)" >&2; exit 1; }
[ -d web/node_modules/playwright-core ] || { echo "missing web/node_modules (cd web && npm ci)" >&2; exit 1; }

work="$(mktemp -d)"
cleanup() {
    [ -n "${publisher:-}" ] && kill "$publisher" 2>/dev/null || true
    [ -n "${olive_pid:-}" ] && kill "$olive_pid" 2>/dev/null || true
    sleep 0.5
    rm -rf "$work"
}
trap cleanup EXIT

ffmpeg -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
    -t 20 -c:v libx264 -preset superfast -b:v 2500k -maxrate 2500k -bufsize 5000k -bf 2 -g 60 -keyint_min 60 \
    -sc_threshold 0 -pix_fmt yuv420p -c:a aac -b:a 128k -f flv "$work/input.flv"

"$OLIVE" serve --demo --data-dir "$work/data" --http "$HTTP" --rtmp "$RTMP" --transcode-slots 1 >"$work/olive.log" 2>&1 &
olive_pid=$!
for _ in $(seq 300); do curl -sf "http://$HTTP/readyz" >/dev/null && break; sleep 0.1; done
token=$(demo_host_token "$work/data" "$HTTP")
read -r id key < <(new_channel "$HTTP" "$token" latency)
ffmpeg -v error -re -stream_loop -1 -i "$work/input.flv" -c copy -f flv "rtmp://$RTMP/live/$key" </dev/null 2>/dev/null &
publisher=$!
for _ in $(seq 120); do
    [ "$(curl -s "http://$HTTP/live/$id/master.m3u8" | grep -c EXT-X-STREAM-INF)" -ge 2 ] && break
    sleep 0.5
done

echo "machine: $(nproc) cores, $(uname -sr); $("$CHROMIUM" --version 2>/dev/null); hls.js $(node -p 'require("./web/node_modules/hls.js/package.json").version')"
echo "one standard live, ${SECONDS_PER_RUNG}s per rendition after 8 s at the live edge"
(cd web && node tools/rung-latency.mjs "http://$HTTP/watch/$id" "$CHROMIUM" "$SECONDS_PER_RUNG")
