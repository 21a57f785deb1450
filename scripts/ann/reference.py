#!/usr/bin/env python3
"""Public HNSW baselines (hnswlib, faiss) on the files of `adserve ann-bench`.

Reads raw little-endian float32 base (N x D) and queries (Q x D) and int32 exact neighbour
ids (Q x k, row-major, best first; scripts/ann/make_data.py writes them), ranks by inner
product, and for each library and M prints build time, index memory, and per search setting
recall@k, single-thread queries/s and p50/p99 latency, the same fields as `adserve ann-bench`.

    hnswlib  hnswlib.Index(space="ip"), init_index(M, ef_construction), add_items on --threads
             threads; search: set_ef(ef), knn_query(one query, k, num_threads=1)
    faiss    IndexHNSWFlat(D, M, METRIC_INNER_PRODUCT), hnsw.efConstruction, add with
             omp_set_num_threads(--threads); search: omp_set_num_threads(1), hnsw.efSearch = ef,
             index.search(one query, k)

hnswlib searches with max(ef, k) candidates, so at k = 100 its ef = 50 is the same as ef = 100
(params.ef_effective says so); faiss 1.15 does not raise ef to k, so its ef = 50 recalls less.
Each (library, M) runs in a fresh child process, so memory_mb is that process's RSS growth
over the build (what the index holds, measured like a server would see it); index_mb is the
index's own size (hnswlib's index_file_size(), faiss's vectors + graph arrays). qps is
queries / wall time of the one-query-at-a-time loop, Python call overhead included (a few
microseconds per call); p50_us / p99_us are per-call wall latencies. On a busy machine those
swing with the load, so two extra fields count CPU time instead: build_cpu_s (all build
threads) and cpu_qps (queries per CPU-second of the searching thread). A warm-up pass of up to
100 queries runs, untimed, before each setting.

    scripts/ann/reference.py --base D/base.f32 --queries D/queries.f32 --truth D/truth.i32 --k 100 --dim 64
    scripts/ann/reference.py ... --threads 1 --libs hnswlib --M 16 --ef 100,200,400 --json

With --json, stdout is only the JSON document
    {"hnswlib": [{"build_s", "build_cpu_s", "memory_mb", "index_mb", "params": {...},
                  "results": [{"params", "recall", "qps", "p50_us", "p99_us", "cpu_qps"}, ...]}, ...],
     "faiss": [...]}
(one entry per M); progress goes to stderr.
"""
import argparse
import gc
import json
import os
import sys
import time

# One BLAS/OpenMP thread unless asked otherwise (faiss's build sets its own count below).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
import numpy as np

LIBS = ("hnswlib", "faiss")
WARMUP = 100


class InputError(Exception):
    pass


def rows_of(path, row_bytes, what):
    """Row count of a raw file, checking its size is a positive multiple of row_bytes."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise InputError(f"{path}: cannot read {what} file ({e.strerror})")
    if size == 0:
        raise InputError(f"{path}: {what} file is empty")
    if size % row_bytes:
        raise InputError(f"{path}: {what} file is {size} bytes, not a multiple of one row "
                         f"({row_bytes} bytes); wrong --dim or --k, or a truncated file?")
    return size // row_bytes


def check_meta(path, key, value, flag):
    """If make_data.py's meta.json sits beside the file, its dimension / k must agree."""
    meta_path = os.path.join(os.path.dirname(os.path.abspath(path)), "meta.json")
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return
    if key in meta and meta[key] is not None and meta[key] != value:
        raise InputError(f"{path}: {meta_path} says {key} = {meta[key]}, but {flag} {value} was given")


def load(args):
    """Validate sizes and shapes, then read (base, queries, truth) as contiguous arrays."""
    if args.dim < 1 or args.k < 1:
        raise InputError("--dim and --k must be positive")
    n = rows_of(args.base, args.dim * 4, "base")
    q = rows_of(args.queries, args.dim * 4, "queries")
    tq = rows_of(args.truth, args.k * 4, "truth")
    check_meta(args.base, "dim", args.dim, "--dim")
    check_meta(args.queries, "dim", args.dim, "--dim")
    check_meta(args.truth, "k", args.k, "--k")
    if tq != q:
        raise InputError(f"{args.truth}: truth has {tq} rows of {args.k} ids but {args.queries} has "
                         f"{q} queries of dimension {args.dim}; the row counts must match (wrong --dim or --k, or "
                         f"files from different sets?)")
    if args.k > n:
        raise InputError(f"{args.base}: only {n} base vectors, fewer than --k {args.k}")
    base = np.fromfile(args.base, dtype="<f4").reshape(n, args.dim)
    queries = np.fromfile(args.queries, dtype="<f4").reshape(q, args.dim)
    truth = np.fromfile(args.truth, dtype="<i4").reshape(q, args.k)
    if truth.min() < 0 or truth.max() >= n:
        raise InputError(f"{args.truth}: ids must be in [0, {n}) for {args.base}, found "
                         f"{truth.min()}..{truth.max()}")
    for path, a in ((args.base, base), (args.queries, queries)):
        if not np.isfinite(a).all():
            raise InputError(f"{path}: contains NaN or infinite values")
    if args.limit_queries:
        queries, truth = queries[:args.limit_queries], truth[:args.limit_queries]
    return (np.ascontiguousarray(base, dtype=np.float32), np.ascontiguousarray(queries, dtype=np.float32),
            truth.astype(np.int64))


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def recall_at_k(found, truth):
    k = truth.shape[1]
    return float(np.mean([len(np.intersect1d(f[f >= 0], t, assume_unique=True)) / k
                          for f, t in zip(found, truth)]))


def sweep(searcher, queries, truth, k, ef_list, params):
    """Run every query one at a time for each ef; searcher(ef) -> fn(1 x D query) -> ids."""
    results = []
    for ef in ef_list:
        search = searcher(ef)
        for i in range(min(WARMUP, len(queries))):
            search(queries[i:i + 1])
        found = np.full((len(queries), k), -1, dtype=np.int64)
        lat = np.empty(len(queries))
        gc.disable()
        start, cpu_start = time.perf_counter(), time.thread_time()
        for i in range(len(queries)):
            t = time.perf_counter_ns()
            ids = search(queries[i:i + 1])
            lat[i] = time.perf_counter_ns() - t
            found[i, :len(ids)] = ids
        wall, cpu = time.perf_counter() - start, time.thread_time() - cpu_start
        gc.enable()
        ef_effective = max(ef, k) if params["library"] == "hnswlib" else ef
        r = {"params": dict(params, ef=ef, ef_effective=ef_effective),
             "recall": round(recall_at_k(found, truth), 5),
             "qps": round(len(queries) / wall, 1),
             "p50_us": round(float(np.percentile(lat, 50)) / 1e3, 1),
             "p99_us": round(float(np.percentile(lat, 99)) / 1e3, 1),
             "cpu_qps": round(len(queries) / max(cpu, 1e-9), 1)}
        print(f"  {params['library']} M={params['M']} ef={ef}: recall {r['recall']:.4f}, {r['qps']:.0f} q/s",
              file=sys.stderr)
        results.append(r)
    return results


def build_hnswlib(base, k, M, efc, threads):
    import hnswlib
    index = hnswlib.Index(space="ip", dim=base.shape[1])
    index.init_index(max_elements=len(base), ef_construction=efc, M=M, random_seed=100)
    index.add_items(base, np.arange(len(base)), num_threads=threads)

    def searcher(ef):
        index.set_ef(ef)
        return lambda q: index.knn_query(q, k=k, num_threads=1)[0][0].astype(np.int64)
    return index, searcher, index.index_file_size() / 2 ** 20


def build_faiss(base, k, M, efc, threads):
    import faiss
    index = faiss.IndexHNSWFlat(base.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = efc
    faiss.omp_set_num_threads(threads)
    index.add(base)
    faiss.omp_set_num_threads(1)
    h = index.hnsw
    graph = h.neighbors.size() * 4 + h.levels.size() * 4 + h.offsets.size() * 8
    vectors = faiss.downcast_index(index.storage).codes.size()

    def searcher(ef):
        index.hnsw.efSearch = ef
        return lambda q: index.search(q, k)[1][0]
    return index, searcher, (graph + vectors) / 2 ** 20


def run_config(lib, M, args):
    """One (library, M): build, then the ef sweep. Runs in its own process."""
    base, queries, truth = load(args)
    __import__(lib)  # load the library (and its OpenMP runtime) before measuring the build
    gc.collect()
    before = rss_mb()
    t, cpu = time.perf_counter(), time.process_time()
    build = build_hnswlib if lib == "hnswlib" else build_faiss
    index, searcher, index_mb = build(base, args.k, M, args.ef_construction, args.threads)
    build_s, build_cpu_s = time.perf_counter() - t, time.process_time() - cpu
    gc.collect()
    memory_mb = rss_mb() - before
    params = {"library": lib, "M": M, "ef_construction": args.ef_construction}
    print(f"  {lib} M={M}: built {len(base)} x {base.shape[1]} in {build_s:.2f} s on {args.threads} thread(s), "
          f"+{memory_mb:.1f} MB RSS", file=sys.stderr)
    results = sweep(searcher, queries, truth, args.k, args.ef, params)
    return {"build_s": round(build_s, 3), "build_cpu_s": round(build_cpu_s, 3), "memory_mb": round(memory_mb, 1), "index_mb": round(index_mb, 1),
            "params": dict(params, build_threads=args.threads, n=len(base), dim=base.shape[1],
                           queries=len(queries), k=args.k),
            "results": results}


def print_table(report, k):
    cols = ["library", "M", "efC", "build_s", "build_cpu_s", "memory_mb", "index_mb", "ef", f"recall@{k}", "qps",
            "p50_us", "p99_us", "cpu_qps"]
    rows = []
    for lib, entries in report.items():
        for e in entries:
            for j, r in enumerate(e["results"]):
                first = j == 0
                rows.append([lib, e["params"]["M"], e["params"]["ef_construction"],
                             f"{e['build_s']:.2f}" if first else "", f"{e['build_cpu_s']:.2f}" if first else "",
                             f"{e['memory_mb']:.1f}" if first else "",
                             f"{e['index_mb']:.1f}" if first else "", r["params"]["ef"], f"{r['recall']:.4f}",
                             f"{r['qps']:.0f}", f"{r['p50_us']:.1f}", f"{r['p99_us']:.1f}", f"{r['cpu_qps']:.0f}"])
    widths = [max(len(str(x)) for x in col) for col in zip(cols, *rows)]
    for row in [cols] + rows:
        print("  ".join(str(x).rjust(w) for x, w in zip(row, widths)))


def int_list(s):
    try:
        v = [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {s!r}")
    if not v or min(v) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {s!r}")
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="N x D little-endian float32")
    ap.add_argument("--queries", required=True, help="Q x D little-endian float32")
    ap.add_argument("--truth", required=True, help="Q x k little-endian int32, exact ids best first")
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--threads", type=int, default=2, help="build threads (search is always one thread)")
    ap.add_argument("--libs", default="hnswlib,faiss", help="comma-separated subset of hnswlib,faiss")
    ap.add_argument("--M", type=int_list, default=[16, 32], help="graph degrees, e.g. 16,32")
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--ef", type=int_list, default=[50, 100, 150, 200, 300], help="search ef sweep")
    ap.add_argument("--limit-queries", type=int, default=0, help="use only the first N queries")
    ap.add_argument("--json", action="store_true", help="print only the JSON document on stdout")
    args = ap.parse_args()
    libs = [x.strip() for x in args.libs.split(",") if x.strip()]
    bad = [x for x in libs if x not in LIBS]
    if bad or not libs:
        ap.error(f"--libs: unknown {bad}; choose from {','.join(LIBS)}")
    if args.threads < 1 or args.ef_construction < 1:
        ap.error("--threads and --ef-construction must be positive")
    try:
        base, queries, _ = load(args)  # validate before spending time on builds
    except InputError as e:
        sys.exit(f"reference.py: error: {e}")
    n, q = len(base), len(queries)
    del base, queries
    for lib in libs:
        try:
            __import__(lib)
        except ImportError:
            sys.exit(f"reference.py: error: cannot import {lib}: pip install numpy hnswlib faiss-cpu")
    print(f"{args.base}: {n} x {args.dim}, {q} queries, recall@{args.k}; build on {args.threads} thread(s), "
          f"search on 1", file=sys.stderr)

    import multiprocessing as mp
    ctx = mp.get_context("spawn")  # fresh interpreter per config: clean RSS, no OpenMP state across fork
    report = {}
    for lib in libs:
        report[lib] = []
        for M in args.M:
            with ctx.Pool(1) as pool:
                report[lib].append(pool.apply(run_config, (lib, M, args)))
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        print()
    else:
        print_table(report, args.k)


if __name__ == "__main__":
    main()
