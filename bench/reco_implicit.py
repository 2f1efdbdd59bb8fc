"""Trains the Python `implicit` library's ALS on a split `olive reco eval --export DIR` wrote, and
writes its top-k lists to DIR/<protocol>/implicit.tsv for olive to score with the same metrics.

Usage: python3 bench/reco_implicit.py DIR/<protocol> [--factors 64 --regularization 0.05 --alpha 10 --iterations 15]
"""
import argparse
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import scipy.sparse as sp
from implicit.als import AlternatingLeastSquares


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--regularization", type=float, default=0.05)
    ap.add_argument("--alpha", type=float, default=10.0)
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--k", type=int, default=10)
    a = ap.parse_args()

    meta = dict(line.split("\t") for line in open(os.path.join(a.dir, "meta.tsv")).read().split("\n") if line)
    n_users, n_items = int(meta["users"]), int(meta["items"])
    rows, cols, vals = [], [], []
    for line in open(os.path.join(a.dir, "train.tsv")):
        u, i, w = line.rstrip("\n").split("\t")
        rows.append(int(u)), cols.append(int(i)), vals.append(float(w))
    user_items = sp.csr_matrix((np.array(vals, dtype=np.float32), (rows, cols)), shape=(n_users, n_items))

    model = AlternatingLeastSquares(
        factors=a.factors, regularization=a.regularization, alpha=a.alpha, iterations=a.iterations,
        random_state=42, use_gpu=False,
    )
    started = time.perf_counter()
    model.fit(user_items, show_progress=False)
    trained = time.perf_counter() - started

    out = []
    for line in open(os.path.join(a.dir, "cases.tsv")):
        case, user, history, _ = line.rstrip("\n").split("\t")
        user = int(user)
        if user >= 0:
            ids, _ = model.recommend(user, user_items[user], N=a.k, filter_already_liked_items=True)
        else:
            seen = [int(i) for i in history.split(",") if i]
            row = sp.csr_matrix((np.ones(len(seen), dtype=np.float32), ([0] * len(seen), seen)), shape=(1, n_items))
            ids, _ = model.recommend(0, row, N=a.k, filter_already_liked_items=True, recalculate_user=True)
        out.append(f"{case}\t{','.join(str(int(i)) for i in ids)}")
    with open(os.path.join(a.dir, "implicit.tsv"), "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"implicit {getattr(sys.modules['implicit'], '__version__', '?')} ALS: trained in {trained:.2f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
