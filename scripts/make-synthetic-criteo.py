#!/usr/bin/env python3
"""Write a synthetic click log in the Criteo Display Advertising Challenge layout.

Each line: label, 13 integer columns I1..I13, 26 categorical columns C1..C26 (8 hex digits),
tab separated, empty = missing. Labels come from a planted logistic model:

    logit = bias + sum of per-value effects of C1..C8 + slopes * log2(1 + I1..I4)
            + an effect per (C1, C2) value pair + a slope on log2(1 + I5) that depends on C3

The model (cardinalities, value popularity, effects, missing rates, hex ids) is drawn from
--model-seed; the rows from --seed. Train and test files must share --model-seed and differ
in --seed, so both come from the same planted model. Output is deterministic for the seeds
and --rows (a shorter file is not a prefix of a longer one).

    scripts/make-synthetic-criteo.py --rows 1000000 --seed 1 --out /tmp/synthetic-1m.tsv
    scripts/make-synthetic-criteo.py --rows 200000 --seed 2 --out /tmp/synthetic-1m-test.tsv
"""
import argparse
import time

import numpy as np

N_INT, N_CAT = 13, 26
N_EFFECT_CATS = 8  # C1..C8 carry signal; C9..C26 are noise the models must learn to ignore
PAIR_TABLE = 1 << 16  # hashed table of (C1, C2) pair effects


def make_model(model_seed, target_ctr):
    """Draw the planted model; the bias is solved so the base rate is about target_ctr."""
    rng = np.random.default_rng(model_seed)
    m = {
        # Cardinalities log-uniform between 3 and 200,000, so some columns are tiny, some huge.
        "card": np.exp(rng.uniform(np.log(3), np.log(200_000), N_CAT)).astype(np.int64),
        # Popularity skew: value index = floor(card ** u ** skew), a heavy head and a long tail.
        "skew": rng.uniform(1.0, 3.0, N_CAT),
        "cat_missing": np.where(rng.random(N_CAT) < 0.3, rng.uniform(0.05, 0.5, N_CAT), 0.0),
        "int_missing": np.where(rng.random(N_INT) < 0.5, rng.uniform(0.05, 0.5, N_INT), 0.0),
        "int_scale": np.exp(rng.uniform(np.log(1), np.log(5000), N_INT)),  # typical count size
        # Effect sizes chosen so the planted model itself scores AUC ~0.81, NE ~0.82 (about
        # as hard as real Criteo data), leaving learners room between baseline and oracle.
        "int_slope": rng.normal(0, 0.1, 4),  # I1..I4 act through log2(1 + v)
        "pair_effect": rng.normal(0, 0.24, PAIR_TABLE),  # interaction C1 x C2
        "salt": rng.integers(1, 2**31, N_CAT),  # makes hex ids differ between columns
    }
    m["cat_effect"] = [rng.normal(0, 0.2, m["card"][j]) for j in range(N_EFFECT_CATS)]
    m["i5_slope"] = rng.normal(0, 0.12, m["card"][2])  # interaction: C3 value sets I5's slope
    # Hex id of each value: a fixed odd multiplier plus a per-column salt; the extra last
    # entry "" is what index -1 (missing) picks.
    m["hex"] = [np.array([f"{(i * 2654435761 + m['salt'][j]) % (1 << 32):08x}" for i in range(m["card"][j])] + [""],
                         dtype=object) for j in range(N_CAT)]
    # Solve the bias by bisection on a calibration sample drawn from the model seed too.
    logit = draw_rows(m, np.random.default_rng(model_seed + 1), 100_000)[2]
    lo, hi = -20.0, 20.0
    for _ in range(50):
        m["bias"] = (lo + hi) / 2
        rate = np.mean(1 / (1 + np.exp(-(logit + m["bias"]))))
        lo, hi = (m["bias"], hi) if rate < target_ctr else (lo, m["bias"])
    return m


def draw_rows(m, rng, n):
    """Return (ints, NaN = missing; category value indices, -1 = missing; logit incl. bias)."""
    cats = np.empty((n, N_CAT), dtype=np.int64)
    for j in range(N_CAT):
        u = rng.random(n)
        cats[:, j] = np.minimum((m["card"][j] ** (u ** m["skew"][j])).astype(np.int64) - 1, m["card"][j] - 1)
    ints = np.empty((n, N_INT))
    for j in range(N_INT):
        # Geometric-like counts, a quarter of them zero; I2 (j == 1) also has small negatives.
        v = np.floor(rng.exponential(m["int_scale"][j], n) * (rng.random(n) > 0.25))
        if j == 1:
            v = np.where(rng.random(n) < 0.05, -rng.integers(1, 4, n), v)
        ints[:, j] = v
    logit = np.zeros(n)
    for j in range(N_EFFECT_CATS):
        logit += m["cat_effect"][j][cats[:, j]]
    logit += (np.log2(1 + np.maximum(ints[:, :4], 0)) * m["int_slope"]).sum(axis=1)
    logit += m["pair_effect"][(cats[:, 0] * 1_000_003 + cats[:, 1]) % PAIR_TABLE]
    logit += m["i5_slope"][cats[:, 2]] * np.log2(1 + ints[:, 4]) / 4
    # Missingness is applied after the logit: the planted signal is in the true value.
    ints[rng.random((n, N_INT)) < m["int_missing"]] = np.nan
    cats[rng.random((n, N_CAT)) < m["cat_missing"]] = -1
    return ints, cats, logit + m.get("bias", 0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True, help="seed for the rows")
    ap.add_argument("--model-seed", type=int, default=42, help="seed for the planted model; keep fixed")
    ap.add_argument("--ctr", type=float, default=0.08, help="target base rate of the planted model")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    start = time.perf_counter()
    m = make_model(args.model_seed, args.ctr)
    rng = np.random.default_rng(args.seed)
    with open(args.out, "w") as f:
        for lo in range(0, args.rows, 250_000):  # chunks keep memory bounded
            n = min(250_000, args.rows - lo)
            ints, cats, logit = draw_rows(m, rng, n)
            labels = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
            cols = [labels.astype(str).tolist()]
            for j in range(N_INT):
                s = np.nan_to_num(ints[:, j], nan=0).astype(np.int64).astype(str).astype(object)
                s[np.isnan(ints[:, j])] = ""
                cols.append(s.tolist())
            cols += [m["hex"][j][cats[:, j]].tolist() for j in range(N_CAT)]
            f.write("".join("\t".join(r) + "\n" for r in zip(*cols)))
    print(f"wrote {args.rows} rows to {args.out} in {time.perf_counter() - start:.1f}s "
          f"(model seed {args.model_seed}, row seed {args.seed}, planted bias {m['bias']:.3f})")


if __name__ == "__main__":
    main()
