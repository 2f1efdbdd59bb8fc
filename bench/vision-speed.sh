#!/usr/bin/env bash
# Labelling time per thumbnail on one core, side by side: olive's labeller (tract-onnx, with its
# preprocessing) and onnxruntime (1 thread) on the same ONNX file. The pictures are the packaged
# samples as a live's thumbnails are made (640 px wide JPEG, quality 80).
#
#   bench/vision-speed.sh      # needs: cargo build --release; tools/vision/prepare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OLIVE="${OLIVE:-${CARGO_TARGET_DIR:-target}/release/olive}"
VISION="${VISION:-$HOME/.cache/olive-vision}"
CORE="${CORE:-1}"
REPEAT="${REPEAT:-30}"
[ -x "$OLIVE" ] || { echo "missing $OLIVE (cargo build --release)" >&2; exit 1; }
[ -f "$VISION/efficientnet-lite0.onnx" ] || { echo "missing $VISION (tools/vision/prepare.sh)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 - "$VISION/samples" "$work" <<'PY'
import os, sys
from PIL import Image
samples, out = sys.argv[1], sys.argv[2]
for name in sorted(os.listdir(samples)):
    picture = Image.open(os.path.join(samples, name)).convert('RGB')
    w, h = picture.size
    picture.resize((640, round(h * 640 / w)), Image.BILINEAR).save(os.path.join(out, name.split('.')[0] + '.jpg'), quality=80)
PY

echo "== olive vision label (tract-onnx), pinned to core $CORE"
taskset -c "$CORE" "$OLIVE" vision label --model "$VISION/efficientnet-lite0.onnx" --repeat "$REPEAT" "$work"/*.jpg
echo "== onnxruntime, 1 thread, pinned to core $CORE (inference only)"
taskset -c "$CORE" python3 - "$VISION/efficientnet-lite0.onnx" "$REPEAT" <<'PY'
import sys, time
import numpy as np
import onnxruntime as ort
options = ort.SessionOptions()
options.intra_op_num_threads = options.inter_op_num_threads = 1
session = ort.InferenceSession(sys.argv[1], options)
x = np.random.RandomState(0).uniform(-1, 1, (1, 3, 224, 224)).astype(np.float32)
session.run(None, {'input': x})
times = []
for _ in range(int(sys.argv[2]) * 3):
    start = time.process_time()
    session.run(None, {'input': x})
    times.append((time.process_time() - start) * 1000)
times.sort()
print('  inference: median %.1f ms, p90 %.1f ms of CPU on one thread (%d runs)' % (times[len(times) // 2], times[int(len(times) * 0.9)], len(times)))
PY
