#!/usr/bin/env bash
# The encoder trial (issue 24): which encoder makes a channel's ladder. Every candidate makes the same
# rungs at the same bitrates from the same 720p30 source, with an IDR frame wherever the source has a
# keyframe; we count the CPU each spends (user + system seconds over the clip's length) and compare
# every rung with the source scaled to its size (ffmpeg's ssim and psnr filters, lanczos scaling).
#
#   bench/encoder-trial.sh            # 20 s clip, rungs 480p 1200k, 360p 700k, 240p 400k
#   OPENH264_LADDER=path/to/openh264_ladder bench/encoder-trial.sh   # with the example already built
#   CLIP_SECONDS=60 RUNGS="480:1200 360:700 240:400 160:250" bench/encoder-trial.sh
#
# The source is photographs (scikit-image's samples) panned and zoomed as a camera would, with
# sensor noise, encoded as OBS does (x264 veryfast, 2.5 Mbit/s CBR, 2 s GOP, B-frames).
set -euo pipefail
cd "$(dirname "$0")/.."
CLIP_SECONDS=${CLIP_SECONDS:-20}
RUNGS=${RUNGS:-"480:1200 360:700 240:400"}
work=$(mktemp -d /tmp/olive-encoder-trial.XXXXXX)
trap 'rm -rf "$work"' EXIT

photos=$(python3 -c 'import skimage, os; print(os.path.join(os.path.dirname(skimage.__file__), "data"))')
per=$((CLIP_SECONDS * 30 / 4))
inputs=() filters="" labels=""
for i in 0 1 2 3; do
    photo=("astronaut.png" "coffee.png" "chelsea.png" "rocket.jpg")
    inputs+=(-loop 1 -framerate 30 -t "$((CLIP_SECONDS / 4 + 1))" -i "$photos/${photo[$i]}")
    filters+="[$i:v]scale=2560:1440:force_original_aspect_ratio=increase,crop=2560:1440,setsar=1,"
    filters+="zoompan=z='1+0.0012*on':x='iw/2-(iw/zoom/2)+on*1.5':y='ih/2-(ih/zoom/2)':d=$per:s=1280x720:fps=30,trim=end_frame=$per[p$i];"
    labels+="[p$i]"
done
filters+="${labels}concat=n=4:v=1:a=0,noise=alls=5:allf=t+u,format=yuv420p[v]"
ffmpeg -v error -y "${inputs[@]}" -f lavfi -i sine=frequency=440:sample_rate=48000 -filter_complex "$filters" \
    -map '[v]' -map 4:a -t "$CLIP_SECONDS" -c:v libx264 -preset veryfast -b:v 2500k -maxrate 2500k -bufsize 5000k \
    -g 60 -keyint_min 60 -sc_threshold 0 -c:a aac -b:a 128k -f flv "$work/source.flv"
ffmpeg -v error -y -i "$work/source.flv" -c:v copy -an -bsf:v h264_mp4toannexb -f h264 "$work/source.h264"

# One ffmpeg making every rung with x264 at `$1`'s settings.
x264_ladder() {
    local name=$1 settings=$2 split="" outputs=() n=0
    mkdir -p "$work/$name"
    for r in $RUNGS; do
        local h=${r%%:*} k=${r##*:}
        split+="[s$n]scale=-2:$h[o$n];"
        # shellcheck disable=SC2206
        outputs+=(-map "[o$n]" -c:v libx264 $settings -b:v "${k}k" -maxrate "${k}k" -bufsize "$((k * 2))k"
            -force_key_frames source -sc_threshold 0 -f h264 "$work/$name/$h.h264")
        n=$((n + 1))
    done
    local branches="" i
    for ((i = 0; i < n; i++)); do branches+="[s$i]"; done
    /usr/bin/time -f "%U %S" -o "$work/$name/time" ffmpeg -v error -y -i "$work/source.flv" \
        -filter_complex "[0:v]split=$n$branches;${split%;}" "${outputs[@]}"
}

# OpenH264 decodes no B-frames (OBS's x264 sends them): the trial records that, then gives it the
# pictures ffmpeg decodes (the same single decode the x264 candidates pay for, counted with it).
openh264_ladder() {
    mkdir -p "$work/openh264"
    if "$OPENH264_LADDER" "$work/source.h264" "$work/openh264" 30 $RUNGS > /dev/null 2> "$work/openh264/own-decode"; then
        echo "OpenH264 decoded the source itself" > "$work/openh264/decoder"
    else
        echo "OpenH264 could not decode the source: $(grep -o 'OpenH264 could not decode[^,]*' "$work/openh264/own-decode" | head -1)" > "$work/openh264/decoder"
    fi
    # shellcheck disable=SC2086
    /usr/bin/time -f "%U %S" -o "$work/openh264/time" bash -c "ffmpeg -v error -threads 1 -i '$work/source.flv' -an -f rawvideo -pix_fmt yuv420p - \
        | '$OPENH264_LADDER' raw:1280x720:60 '$work/openh264' 30 $RUNGS > '$work/openh264/stages' 2>/dev/null"
}

x264_ladder x264-veryfast "-preset veryfast"
x264_ladder x264-veryfast-zerolatency "-preset veryfast -tune zerolatency"
x264_ladder x264-superfast-zerolatency "-preset superfast -tune zerolatency"
x264_ladder x264-ultrafast-zerolatency "-preset ultrafast -tune zerolatency"
# OPENH264_LADDER names a built example; otherwise it is built (release) here.
if [ -z "${OPENH264_LADDER:-}" ]; then
    cargo build -q --release -p olive-server -p olive-media --bins --example openh264_ladder
    target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    OPENH264_LADDER="$target/release/examples/openh264_ladder"
fi
openh264_ladder

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(ffmpeg -version | head -1 | cut -d' ' -f1-3); $(date -u +%F)"
echo "clip: ${CLIP_SECONDS} s of 1280x720 30 fps at 2.5 Mbit/s; rungs (height:kbit/s): $RUNGS"
printf '%-28s %14s' candidate "CPU % of core"
for r in $RUNGS; do printf ' %22s' "${r%%:*}p SSIM/PSNR/kbps"; done
echo
for name in x264-veryfast x264-veryfast-zerolatency x264-superfast-zerolatency x264-ultrafast-zerolatency openh264; do
    read -r user sys < "$work/$name/time"
    cpu=$(python3 -c "print(f'{($user + $sys) / $CLIP_SECONDS * 100:.1f}')")
    printf '%-28s %14s' "$name" "$cpu"
    for r in $RUNGS; do
        h=${r%%:*}
        size=$(stat -c %s "$work/$name/$h.h264")
        kbps=$((size * 8 / CLIP_SECONDS / 1000))
        scores=$(ffmpeg -v info -nostats -framerate 30 -i "$work/$name/$h.h264" -i "$work/source.flv" -lavfi \
            "[0:v]setpts=PTS-STARTPTS[d];[1:v]setpts=PTS-STARTPTS,scale=w=-2:h=$h:flags=lanczos,split[r1][r2];[d][r1]ssim[d2];[d2][r2]psnr" \
            -f null - 2>&1 | python3 -c '
import re, sys
t = sys.stdin.read()
s = re.search(r"SSIM .*All:([0-9.]+)", t).group(1)
p = re.search(r"PSNR .*average:([0-9.inf]+)", t).group(1)
print(f"{float(s):.4f}/{float(p):.2f}")')
        printf ' %22s' "$scores/$kbps"
    done
    echo
done
echo "openh264 stages (ms over the clip, decode by ffmpeg): $(cat "$work/openh264/stages")"
cat "$work/openh264/decoder"
