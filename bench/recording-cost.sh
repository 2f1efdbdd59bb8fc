#!/usr/bin/env bash
# What recording and thumbnails cost: N channels of 720p30 (2.5 Mbit/s H.264 + 128 kbit/s AAC) are
# published into one olive for DURATION seconds with `olive bench publish`; every live is recorded to
# local object storage and thumbnailed every 5 s. Reports the CPU time of one thumbnail (decode of a
# keyframe + scale + JPEG encode, measured per thread by the server), the CPU that makes per
# channel-hour, and the bytes written per channel-hour (recordings and thumbnails).
#
#   bench/recording-cost.sh             # needs: cargo build --release; apt-get install ffmpeg
#   CHANNELS=20 DURATION=300 bench/recording-cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/olive-demo.sh
CHANNELS="${CHANNELS:-10}"
DURATION="${DURATION:-120}"
HTTP=127.0.0.1:18411
RTMP=127.0.0.1:19411
need ffmpeg curl python3

# The same input as the ingest benchmark: busy 720p30 test picture, B-frames, 2 s GOP.
ffmpeg -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
    -t 20 -c:v libx264 -preset superfast -b:v 2500k -maxrate 2500k -bufsize 5000k -bf 2 -g 60 -keyint_min 60 \
    -sc_threshold 0 -pix_fmt yuv420p -c:a aac -b:a 128k -f flv "$work/input.flv"

start_olive_demo "$HTTP" "$RTMP"

password=$(awk '$2 == "host@olive.test" {print $3}' "$work/data/demo-accounts.txt")
token=$(curl -s "http://$HTTP/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"host@olive.test\",\"password\":\"$password\"}" | python3 -c 'import sys,json; print(json.load(sys.stdin)["token"])')
: >"$work/keys.txt"
for i in $(seq "$CHANNELS"); do
    curl -s "http://$HTTP/api/v1/channels" -H "authorization: Bearer $token" -H 'content-type: application/json' \
        -d "{\"title\":\"cost $i\"}" | python3 -c 'import sys,json; c=json.load(sys.stdin); print(c["id"], c["stream_key"])' >>"$work/keys.txt"
done

cut -d' ' -f2 "$work/keys.txt" >"$work/stream-keys.txt"
"$OLIVE" bench publish --keys-file "$work/stream-keys.txt" --input "$work/input.flv" --rtmp "rtmp://$RTMP/live" \
    --channels "$CHANNELS" --duration "$DURATION" --server-pid "$olive_pid" | tail -n 3
# Recordings are finalised by a job within seconds of the end.
for _ in $(seq 100); do
    ready=$(curl -s "http://$HTTP/api/v1/replays?limit=200" | python3 -c 'import sys,json; print(len(json.load(sys.stdin)["items"]))')
    [ "$ready" -ge "$CHANNELS" ] && break
    sleep 0.2
done

curl -s "http://$HTTP/metrics" >"$work/metrics.txt"
recorded_ms=$(curl -s "http://$HTTP/api/v1/replays?limit=200" | python3 -c 'import sys,json; print(sum(r["duration_ms"] for r in json.load(sys.stdin)["items"]))')
recordings=$(du -sb "$work/data/objects/recordings" | cut -f1)
thumbnails=$(du -sb "$work/data/objects/thumbnails" | cut -f1)
python3 - "$work/metrics.txt" "$recorded_ms" "$recordings" "$thumbnails" "$CHANNELS" "$DURATION" <<'PY'
import sys
metrics, recorded_ms, recordings, thumbnails, channels, duration = sys.argv[1:]
values = {}
for line in open(metrics):
    if line.startswith("#") or " " not in line:
        continue
    name, value = line.rsplit(" ", 1)
    values[name] = float(value)
count = values.get("olive_thumbnail_cpu_seconds_count", 0)
cpu = values.get("olive_thumbnail_cpu_seconds_sum", 0) / max(count, 1)
wall = values.get("olive_thumbnail_seconds_sum", 0) / max(values.get("olive_thumbnail_seconds_count", 1), 1)
deferred = values.get('olive_thumbnails_total{result="deferred"}', 0)
hours = int(recorded_ms) / 3_600_000
print(f"channels {channels}, {duration} s each; recorded {hours * 60:.1f} channel-minutes")
print(f"thumbnails: {int(count)} made, {int(deferred)} keyframes deferred (no free core); {cpu * 1000:.1f} ms CPU each (decode+scale+encode), {wall * 1000:.1f} ms wall")
per_hour = 3600 / 5
print(f"  per channel-hour at 5 s: {per_hour:.0f} thumbnails, {per_hour * cpu:.1f} s CPU ({per_hour * cpu / 36:.2f} % of one core)")
print(f"storage per channel-hour: recordings {int(recordings) / hours / 1e9:.2f} GB, thumbnails {int(thumbnails) / hours / 1e6:.1f} MB "
      f"({int(thumbnails) / max(count, 1) / 1e3:.0f} kB each)")
PY
