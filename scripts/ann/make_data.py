#!/usr/bin/env python3
"""Write a synthetic approximate-nearest-neighbour benchmark set (inner-product ranking).

Files written to --out (raw little-endian, row-major, no header):
    base.f32     N x D float32, unit-normalized
    queries.f32  Q x D float32, unit-normalized, drawn from the same distribution as the base
                 (fresh draws, not copies of base vectors)
    truth.i32    Q x K int32, exact top-K base ids by inner product, best first
                 (ties, which practically never happen, broken by the lower id)
    meta.json    {"n", "queries", "dim", "k", "kind", "seed", "clusters"}

Kinds:
    clustered  a mixture of --clusters (1,000) Gaussian clusters, like content embeddings:
               cluster sizes are skewed (log-normal weights), each cluster has its own spread,
               the variance falls off over dimensions (power-law spectrum, as in real
               embeddings) and a fixed random rotation hides the axes; then unit-normalized.
    gaussian   isotropic Gaussian, unit-normalized (uniform on the sphere: the hard case).

The ground truth is computed exactly with numpy: float32 matrix products over blocks of the
base keep the best K + 32 candidates per query, which are then re-scored in float64 and sorted,
so float32 rounding cannot change the top K. Memory is the base (N x D x 4 bytes) plus about
200 MB of block buffers; 1M x 64 with 1,000 queries needs about 1 GB and a minute or so on one
core. numpy's BLAS is limited to one thread unless OMP_NUM_THREADS / OPENBLAS_NUM_THREADS are set.

Output is deterministic for (--seed, --n, --queries, --dim, --kind, --clusters); base and
queries come from separate random streams, so changing --queries leaves base.f32 unchanged.

    scripts/ann/make_data.py --n 1000000 --queries 1000 --dim 64 --k 100 --kind clustered --seed 1 --out /tmp/ann-1m
    scripts/ann/make_data.py --n 20000 --queries 200 --dim 64 --k 100 --kind gaussian --seed 1 --out /tmp/ann-20k-g
"""
import argparse
import json
import os
import resource
import sys
import time

# One BLAS thread by default (shared 2-core machines); set before numpy loads.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
import numpy as np

GEN_CHUNK = 1 << 16  # rows generated per step (fixed: the output depends on it)
MARGIN = 32  # extra float32 candidates kept per query before the float64 re-scoring
BLOCK_ELEMS = 1 << 24  # query-block x base-block scores per step (64 MB float32)


def normalize(x):
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


class Clustered:
    """The mixture model; its parameters come from their own stream, shared by base and queries."""

    def __init__(self, rng, dim, clusters):
        self.dim = dim
        # Power-law spectrum: std of dimension i ~ (i + 1) ** -0.5, mean square 1.
        spec = (np.arange(dim) + 1.0) ** -0.5
        self.spec = (spec / np.sqrt(np.mean(spec ** 2))).astype(np.float32)
        self.centers = normalize(rng.standard_normal((clusters, dim), dtype=np.float32) * self.spec)
        w = rng.lognormal(0.0, 1.0, clusters)  # skewed cluster sizes (largest ~ 10-20x median)
        self.weights = w / w.sum()
        # Per-cluster spread: noise norm about sigma relative to the unit center, so members sit
        # at cosine ~0.9 (tight) to ~0.7 (loose) from their center.
        self.sigma = rng.uniform(0.5, 1.0, clusters).astype(np.float32)
        q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
        self.rotation = (q * np.sign(np.diag(r))).astype(np.float32)  # Haar-random orthogonal

    def sample(self, rng, m):
        c = rng.choice(len(self.weights), size=m, p=self.weights)
        noise = rng.standard_normal((m, self.dim), dtype=np.float32) * self.spec
        noise *= (self.sigma[c] / np.sqrt(self.dim))[:, None]
        x = self.centers[c] + noise
        return normalize(x @ self.rotation)


class Gaussian:
    def __init__(self, dim):
        self.dim = dim

    def sample(self, rng, m):
        return normalize(rng.standard_normal((m, self.dim), dtype=np.float32))


def generate(model, rng, rows, dim):
    out = np.empty((rows, dim), dtype=np.float32)
    for start in range(0, rows, GEN_CHUNK):
        stop = min(rows, start + GEN_CHUNK)
        out[start:stop] = model.sample(rng, stop - start)
    return out


def exact_topk(base, queries, k):
    """Exact top-k ids by inner product, best first, as int32 (Q x k)."""
    n, q = len(base), len(queries)
    keep = min(n, k + MARGIN)
    qb = min(q, 1024)
    nb = max(keep, min(n, BLOCK_ELEMS // qb))
    truth = np.empty((q, k), dtype=np.int32)
    for q0 in range(0, q, qb):
        qs = queries[q0:q0 + qb]
        best_s = np.empty((len(qs), 0), dtype=np.float32)
        best_i = np.empty((len(qs), 0), dtype=np.int64)
        for b0 in range(0, n, nb):
            s = qs @ base[b0:b0 + nb].T  # (qb, nb) float32
            m = s.shape[1]
            if m > keep:
                part = np.argpartition(s, m - keep, axis=1)[:, m - keep:].copy()  # drop the big index array
                s = np.take_along_axis(s, part, axis=1)
                ids = part + b0
            else:
                ids = np.broadcast_to(np.arange(b0, b0 + m), s.shape)
            best_s = np.concatenate([best_s, s], axis=1)
            best_i = np.concatenate([best_i, ids], axis=1)
            if best_s.shape[1] > keep:
                part = np.argpartition(best_s, best_s.shape[1] - keep, axis=1)[:, -keep:]
                best_s = np.take_along_axis(best_s, part, axis=1)
                best_i = np.take_along_axis(best_i, part, axis=1)
        # Re-score the candidates in float64 and sort by (score desc, id asc).
        exact = np.einsum("qcd,qd->qc", base[best_i].astype(np.float64), qs.astype(np.float64))
        order = np.lexsort((best_i, -exact), axis=1)[:, :k]
        truth[q0:q0 + len(qs)] = np.take_along_axis(best_i, order, axis=1)
    return truth


def write(path, array, dtype):
    np.ascontiguousarray(array, dtype=dtype).tofile(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, required=True, help="base vectors")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--k", type=int, default=100, help="exact neighbours per query in truth.i32")
    ap.add_argument("--kind", choices=["clustered", "gaussian"], default="clustered")
    ap.add_argument("--clusters", type=int, default=1000, help="mixture components (clustered)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True, help="output directory (created if missing)")
    a = ap.parse_args()
    if a.n < 1 or a.queries < 1 or a.dim < 1 or a.clusters < 1:
        ap.error("--n, --queries, --dim and --clusters must be positive")
    if not 1 <= a.k <= a.n:
        ap.error(f"--k must be between 1 and --n ({a.n})")
    if a.n >= 2 ** 31:
        ap.error("--n must fit int32 ids")
    os.makedirs(a.out, exist_ok=True)

    t0, c0 = time.perf_counter(), time.process_time()
    model_ss, base_ss, query_ss = np.random.SeedSequence(a.seed).spawn(3)
    if a.kind == "clustered":
        model = Clustered(np.random.default_rng(model_ss), a.dim, a.clusters)
    else:
        model = Gaussian(a.dim)
    base = generate(model, np.random.default_rng(base_ss), a.n, a.dim)
    queries = generate(model, np.random.default_rng(query_ss), a.queries, a.dim)
    write(os.path.join(a.out, "base.f32"), base, "<f4")
    write(os.path.join(a.out, "queries.f32"), queries, "<f4")
    t1, c1 = time.perf_counter(), time.process_time()
    truth = exact_topk(base, queries, a.k)
    write(os.path.join(a.out, "truth.i32"), truth, "<i4")
    t2, c2 = time.perf_counter(), time.process_time()
    meta = {"n": a.n, "queries": a.queries, "dim": a.dim, "k": a.k, "kind": a.kind, "seed": a.seed,
            "clusters": a.clusters if a.kind == "clustered" else None}
    with open(os.path.join(a.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    top1 = float(np.mean(np.einsum("qd,qd->q", queries, base[truth[:, 0]])))
    kth = float(np.mean(np.einsum("qd,qd->q", queries, base[truth[:, -1]])))
    print(f"{a.out}: {a.n} x {a.dim} base, {a.queries} queries, top-{a.k} truth ({a.kind}, seed {a.seed}); "
          f"generate {t1 - t0:.1f} s ({c1 - c0:.1f} s CPU), truth {t2 - t1:.1f} s ({c2 - c1:.1f} s CPU), peak RSS {peak_mb:.0f} MB; "
          f"mean inner product of the 1st / {a.k}th neighbour {top1:.3f} / {kth:.3f}", file=sys.stderr)


if __name__ == "__main__":
    main()
