#!/usr/bin/env bash
# What labelling live thumbnails costs per live-hour. One live of DURATION seconds is published into
# an olive that has the vision model: a "show" of still scenes (the packaged sample pictures, SCENE
# seconds each, in turn) with camera noise on every frame, thumbnailed every 5 s. Reports, from the
# replay's `labelling` record, the thumbnails taken, those labelled (only changed pictures are), the
# labelling CPU, and per live-hour: labelled pictures, what a managed service charges for labelling
# them, for one picture every 15 s, and for analysing every minute of the video.
#
#   bench/vision-cost.sh       # needs: cargo build --release; tools/vision/prepare.sh; ffmpeg
#   DURATION=600 SCENE=60 bench/vision-cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/server-env.sh

OLIVE="${OLIVE:-${CARGO_TARGET_DIR:-target}/release/olive}"
VISION="${VISION:-$HOME/.cache/olive-vision}"
DURATION="${DURATION:-240}"
SCENE="${SCENE:-40}"
HTTP=127.0.0.1:18412
RTMP=127.0.0.1:19412
for tool in ffmpeg curl python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
[ -x "$OLIVE" ] || { echo "missing $OLIVE (cargo build --release)" >&2; exit 1; }
[ -f "$VISION/efficientnet-lite0.onnx" ] || { echo "missing $VISION (tools/vision/prepare.sh)" >&2; exit 1; }

work="$(mktemp -d)"
cleanup() {
    [ -n "${publisher:-}" ] && kill "$publisher" 2>/dev/null || true
    [ -n "${olive_pid:-}" ] && kill "$olive_pid" 2>/dev/null || true
    sleep 0.5
    rm -rf "$work"
}
trap cleanup EXIT

# Three scenes with temporal noise (a camera's grain), 2 s GOP, as OBS would send it.
s="$VISION/samples"
ffmpeg -v error -y -loop 1 -framerate 30 -t "$SCENE" -i "$s/coffee.png" -loop 1 -framerate 30 -t "$SCENE" -i "$s/chelsea.png" \
    -loop 1 -framerate 30 -t "$SCENE" -i "$s/grace_hopper.jpg" -f lavfi -i anullsrc=r=48000:cl=stereo \
    -filter_complex "[0]scale=1080:720,setsar=1[a];[1]scale=1080:720,setsar=1[b];[2]scale=1080:720,setsar=1[c];[a][b][c]concat=n=3:v=1:a=0,noise=alls=12:allf=t[v]" \
    -map '[v]' -map 3:a -shortest -c:v libx264 -preset superfast -b:v 2500k -g 60 -keyint_min 60 -sc_threshold 0 \
    -pix_fmt yuv420p -c:a aac -b:a 128k -f flv "$work/show.flv"

"$OLIVE" serve --demo --data-dir "$work/data" --http "$HTTP" --rtmp "$RTMP" \
    --vision-model "$VISION/efficientnet-lite0.onnx" >"$work/olive.log" 2>&1 &
olive_pid=$!
for _ in $(seq 300); do curl -sf "http://$HTTP/readyz" >/dev/null && break; sleep 0.1; done

password=$(awk '$2 == "host@olive.test" {print $3}' "$work/data/demo-accounts.txt")
token=$(curl -s "http://$HTTP/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"host@olive.test\",\"password\":\"$password\"}" | python3 -c 'import sys,json; print(json.load(sys.stdin)["token"])')
read -r channel key < <(curl -s "http://$HTTP/api/v1/channels" -H "authorization: Bearer $token" \
    -H 'content-type: application/json' -d '{"title":"vision cost"}' \
    | python3 -c 'import sys,json; c=json.load(sys.stdin); print(c["id"], c["stream_key"])')

ffmpeg -v error -re -stream_loop -1 -i "$work/show.flv" -t "$DURATION" -c copy -f flv "rtmp://$RTMP/live/$key" &
publisher=$!
wait "$publisher" || true
publisher=
for _ in $(seq 200); do
    replay=$(curl -s "http://$HTTP/api/v1/replays?channel_id=$channel" | python3 -c 'import sys,json; i=json.load(sys.stdin)["items"]; print(i[0]["id"] if i else "")')
    [ -n "$replay" ] && break
    sleep 0.2
done
# Labelling jobs queued just before the end finish within seconds.
sleep 3
curl -s "http://$HTTP/api/v1/replays/$replay" >"$work/replay.json"
python3 - "$work/replay.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
c = r["labelling"]
hours = r["duration_ms"] / 3.6e6
shown = ", ".join("%s %.2f" % (l["name"], l["confidence"]) for l in r["labels"])
per_hour = c["labelled"] / hours
print("live: %.0f s; on screen over the show: %s" % (r["duration_ms"] / 1000, shown))
print("thumbnails taken %d, labelled %d (changed pictures only), labelling CPU %d ms" % (c["thumbnails"], c["labelled"], c["cpu_ms"]))
print("per live-hour: %.0f thumbnails, %.0f labelled, %.1f CPU-seconds of labelling" % (c["thumbnails"] / hours, per_hour, c["cpu_ms"] / hours / 1000))
print("per live-hour at list prices: these pictures $%.3f; one picture per 15 s $0.240; every video minute $6.000" % (per_hour * 0.001))
print("labelling changed thumbnails costs 1/%.0f of video analysis and 1/%.1f of one picture per 15 s" % (6.0 / max(per_hour * 0.001, 1e-9), 0.24 / max(per_hour * 0.001, 1e-9)))
PY
