#!/usr/bin/env python3
"""Public CTR baselines on a Criteo-layout click log, for comparison with `adserve ctr-bench`.

Models: scikit-learn LogisticRegression on one-hot features, Vowpal Wabbit logistic regression
(through the Python binding example by example, and through VW's own C++ file parser on a
converted VW-format file), and LightGBM. Metrics mirror Sources/Models/OfflineMetrics.swift.

    scripts/ctr-reference.py --file data.tsv --train-rows 8000
    scripts/ctr-reference.py --train train.tsv --test test.tsv --models vw,vwfile,lgb --json
"""
import argparse, gc, json, os, shutil, sys, tempfile, time

# One thread per model so speeds compare (VW learns on one thread). Set before numpy loads:
# on a busy 2-core machine, OpenMP/OpenBLAS pools of 2 made the sklearn fit ~30x slower.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
import numpy as np

MODELS = ["const", "lr", "vw", "vwfile", "lgb"]
# A few VW settings for --vw-grid: defaults (-l 0.5), other learning rates, L2, a bigger hash
# space, 3 passes, and VW's FTRL-Proximal (its default alpha 0.005 is far too small here).
VW_GRID = ["-b 20", "-b 20 -l 0.1", "-b 20 -l 0.2", "-b 20 -l 0.2 --l2 1e-5", "-b 24 -l 0.2",
           "-b 20 -l 0.1 --passes 3", "-b 20 --ftrl --ftrl_alpha 0.1 --ftrl_beta 1"]


def read_criteo(path, start=0, stop=None):
    """Rows [start, stop) as (labels, raw ints with NaN = missing, 26 string columns, '' = missing)."""
    with open(path) as f:
        rows = [line.rstrip("\n").split("\t") for line in f.read().splitlines()[start:stop]]
    good = [r for r in rows if len(r) == 40 and r[0] in ("0", "1")]
    cols = list(zip(*good))
    labels = np.array([s == "1" for s in cols[0]], dtype=np.int64)
    ints = np.array([[float(s) if s else np.nan for s in c] for c in cols[1:14]]).T
    return labels, ints, [np.array(c) for c in cols[14:]], len(rows) - len(good)


def buckets(ints):
    """Same buckets as CriteoReader.swift: v <= 2 -> "v", else "b" + floor(ln(v)^2); missing -> "NA"."""
    out = np.empty(ints.shape, dtype=object)
    with np.errstate(invalid="ignore", divide="ignore"):
        big = np.floor(np.log(np.where(ints > 2, ints, 3)) ** 2).astype(np.int64)
    for idx, v in np.ndenumerate(ints):
        out[idx] = "NA" if np.isnan(v) else (str(int(v)) if v <= 2 else "b%d" % big[idx])
    return out


def columns(data):
    """All 39 columns as value arrays (integer buckets, then the categorical strings)."""
    return [buckets(data[1])[:, j] for j in range(13)] + data[2]


def encode(train_col, test_col):
    """Codes 0..n-1 for the train vocabulary; test values unseen in training get -1."""
    vocab, train_codes = np.unique(train_col, return_inverse=True)
    pos = np.minimum(np.searchsorted(vocab, test_col), len(vocab) - 1)
    return train_codes, np.where(vocab[pos] == test_col, pos, -1), len(vocab)


def metrics(p, y):
    """AUC, log loss (clipped at 1e-15), NE against the test rows' own base rate (as
    OfflineMetrics computes it), mean(p) / mean(y)."""
    from sklearn.metrics import roc_auc_score
    q = np.clip(p, 1e-15, 1 - 1e-15)
    logloss = -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))
    b = np.clip(y.mean(), 1e-15, 1 - 1e-15)
    rng = np.random.default_rng(0)  # 200 bootstrap resamples of the test set for an AUC interval
    boots = [roc_auc_score(y[i], p[i]) for i in (rng.integers(0, len(y), len(y)) for _ in range(200))]
    return {"auc": roc_auc_score(y, p), "logloss": logloss, "ne": logloss / -(b * np.log(b) + (1 - b) * np.log(1 - b)),
            "calibration": p.mean() / y.mean(), "auc_ci95": [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]}


def timed(fn, *a):
    start = time.perf_counter()
    out = fn(*a)
    return out, time.perf_counter() - start


def logreg(train, test, C):
    """One-hot of all 39 columns (missing is its own value), L2 logistic regression, lbfgs."""
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression
    mats, offset = ([], []), 0
    for tr, te in zip(columns(train), columns(test)):
        a, b, n = encode(tr, te)
        mats[0].append(a + offset), mats[1].append(np.where(b < 0, -1, b + offset))
        offset += n
    def onehot(codes):
        codes = np.stack(codes, axis=1)
        rows = np.repeat(np.arange(len(codes)), codes.shape[1])
        keep = codes.ravel() >= 0  # unseen test values get no column
        return csr_matrix((np.ones(keep.sum()), (rows[keep], codes.ravel()[keep])), shape=(len(codes), offset))
    Xtr, Xte = onehot(mats[0]), onehot(mats[1])
    model = LogisticRegression(C=C, solver="lbfgs", max_iter=1000)
    _, t_fit = timed(model.fit, Xtr, train[0])
    p, t_pred = timed(lambda: model.predict_proba(Xte)[:, 1])
    return p, t_fit, t_pred, 1, f"C={C}, lbfgs, {offset} one-hot columns"


def vw_lines(data):
    """VW text for each row: one namespace per column (|I1 .. |C26), one feature per value."""
    cols = [[f"|I{j + 1} v{b}" for b in c.tolist()] for j, c in enumerate(columns(data)[:13])]
    cols += [[f"|C{j + 1} c{v}" for v in c.tolist()] for j, c in enumerate(data[2])]
    feats = [" ".join(t) for t in zip(*cols)]
    return [("1 " if y else "-1 ") + f for y, f in zip(data[0], feats)], feats


def split_passes(settings):
    """'-b 20 --passes 3' -> ('-b 20', 3)."""
    words = settings.split()
    if "--passes" not in words:
        return settings, 1
    i = words.index("--passes")
    return " ".join(words[:i] + words[i + 2:]), int(words[i + 1])


def vw_binding(train_lines, test_feats, settings):
    """VW through the Python binding: learn() / predict() one example string at a time."""
    from vowpalwabbit import Workspace
    args, passes = split_passes(settings)
    ws = Workspace(f"{args} --loss_function logistic --link logistic --quiet")
    def fit():
        for _ in range(passes):  # later passes continue the same learning-rate schedule
            for line in train_lines:
                ws.learn(line)
    _, t_fit = timed(fit)
    p, t_pred = timed(lambda: np.array([ws.predict(f) for f in test_feats]))
    ws.finish()
    return p, t_fit, t_pred, passes, f"{settings}, binding"


def vw_file(train_lines, test_feats, settings, workdir):
    """VW's own driver (the `vw` command-line code path) on VW-format files; the file writing
    is timed separately from training. Multiple passes use VW's cache file, holdout off."""
    from vowpalwabbit import Workspace
    args, passes = split_passes(settings)
    paths = {k: os.path.join(workdir, k) for k in ("train.vw", "test.vw", "model", "cache", "preds")}
    def write():
        for name, lines in (("train.vw", train_lines), ("test.vw", test_feats)):
            with open(paths[name], "w") as f:
                f.write("\n".join(lines) + "\n")
    _, t_write = timed(write)
    multi = f" --passes {passes} -k --cache_file {paths['cache']} --holdout_off" if passes > 1 else ""
    _, t_fit = timed(lambda: Workspace(f"-d {paths['train.vw']} {args} --loss_function logistic "
                                       f"--link logistic --quiet -f {paths['model']}{multi}").finish())
    _, t_pred = timed(lambda: Workspace(f"-d {paths['test.vw']} -t -i {paths['model']} -p {paths['preds']} "
                                        "--link logistic --quiet").finish())
    return np.loadtxt(paths["preds"]), t_fit, t_pred, passes, f"{settings}, VW file parser; writing files took {t_write:.2f}s"


def lightgbm(train, test, threads, rounds=200):
    """Raw integers numeric (NaN = missing), categoricals as LightGBM categoricals (train
    vocabulary codes; unseen = missing). Rounds picked by early stopping on the last 10% of
    the training rows, then refit on all training rows (only the refit is timed)."""
    import lightgbm as lgb
    codes = [encode(tr, te)[:2] for tr, te in zip(train[2], test[2])]
    Xtr = np.hstack([train[1], np.stack([c[0] for c in codes], 1)])
    Xte = np.hstack([test[1], np.stack([np.where(c[1] < 0, np.nan, c[1]) for c in codes], 1)])
    params = {"objective": "binary", "num_leaves": 31, "learning_rate": 0.05, "num_threads": threads, "verbose": -1}
    cat, cut = list(range(13, 39)), int(len(Xtr) * 0.9)
    ds = lambda X, y: lgb.Dataset(X, y, categorical_feature=cat, free_raw_data=False)
    early = lgb.train(params, ds(Xtr[:cut], train[0][:cut]), rounds, valid_sets=[ds(Xtr[cut:], train[0][cut:])],
                      callbacks=[lgb.early_stopping(20, verbose=False)])
    best = early.best_iteration or rounds
    model, t_fit = timed(lambda: lgb.train(params, ds(Xtr, train[0]), best))
    p, t_pred = timed(model.predict, Xte)
    return p, t_fit, t_pred, 1, f"{best} rounds (early stop on train tail), {threads} thread(s)"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", help="one file, split in row order at --train-rows")
    ap.add_argument("--train-rows", type=int, default=8000)
    ap.add_argument("--train"), ap.add_argument("--test")
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma list of {MODELS}")
    ap.add_argument("--C", type=float, default=0.1, help="inverse L2 strength of the logistic regression")
    ap.add_argument("--vw", default="-b 20 -l 0.2", help="VW settings; '--passes N' is handled here")
    ap.add_argument("--vw-grid", action="store_true", help=f"also report VW for each of {VW_GRID}")
    ap.add_argument("--vw-dir", help="keep the VW-format files and model here (default: temporary)")
    ap.add_argument("--threads", type=int, default=1, help="LightGBM threads")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not (args.file or args.train):
        ap.error("give --file, or --train (with --test, or split at --train-rows)")
    gc.disable()  # no reference cycles here; the collector only slows down building millions of rows
    log = lambda *a: print(*a, file=sys.stderr if args.json else sys.stdout)  # keep --json output parseable
    path = args.file or args.train
    train, t_read = timed(read_criteo, path, 0, None if args.test else args.train_rows)
    test = read_criteo(args.test) if args.test else read_criteo(path, args.train_rows)
    rate, wanted = train[0].mean(), args.models.split(",")
    log(f"train {len(train[0])} rows ({train[3]} malformed, CTR {rate:.4f}), test {len(test[0])} rows "
          f"({test[3]} malformed, CTR {test[0].mean():.4f}); reading train took {t_read:.1f}s")
    runs, tmp = [], None  # runs: (name, function returning (predictions, fit s, predict s, passes, notes))
    if "const" in wanted:
        runs.append(("constant", lambda: (np.full(len(test[0]), rate), 0, 0, 1, "training base rate")))
    if "lr" in wanted:
        runs.append(("sklearn_logreg", lambda: logreg(train, test, args.C)))
    if "vw" in wanted or "vwfile" in wanted:
        (train_lines, _), t_conv = timed(vw_lines, train)
        test_feats = vw_lines(test)[1]
        log(f"converting the training rows to VW text took {t_conv:.2f}s (not in VW training speed)")
        if args.vw_dir:
            os.makedirs(args.vw_dir, exist_ok=True)
        tmp = args.vw_dir or tempfile.mkdtemp(prefix="ctr-reference-")
        for s in [args.vw] + [g for g in VW_GRID if args.vw_grid and g != args.vw]:
            if "vw" in wanted:
                runs.append(("vw_binding", lambda s=s: vw_binding(train_lines, test_feats, s)))
            if "vwfile" in wanted:
                runs.append(("vw_file", lambda s=s: vw_file(train_lines, test_feats, s, tmp)))
    if "lgb" in wanted:
        runs.append(("lightgbm", lambda: lightgbm(train, test, args.threads)))
    results = []
    for name, run in runs:
        p, t_fit, t_pred, passes, notes = run()
        timed_run = name != "constant"
        results.append({"name": name, **metrics(p, test[0]),
                        "train_examples_per_s": len(train[0]) * passes / t_fit if timed_run else None,
                        "predict_per_s": len(test[0]) / t_pred if timed_run else None,
                        "train_seconds": t_fit if timed_run else None, "notes": notes})
    if tmp and not args.vw_dir:
        shutil.rmtree(tmp)
    if args.json:
        print(json.dumps({"models": results}, indent=1))
        return
    print("\n| model | AUC (95% bootstrap) | log loss | NE | calibration | train ex/s | predict/s | notes |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        speed = f"{r['train_examples_per_s']:,.0f} | {r['predict_per_s']:,.0f}" if r["train_seconds"] else " | "
        print(f"| {r['name']} | {r['auc']:.4f} ({r['auc_ci95'][0]:.3f}–{r['auc_ci95'][1]:.3f}) | {r['logloss']:.4f} | "
              f"{r['ne']:.4f} | {r['calibration']:.3f} | {speed} | {r['notes']} |")


if __name__ == "__main__":
    main()
