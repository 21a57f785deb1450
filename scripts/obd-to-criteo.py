#!/usr/bin/env python3
"""The Open Bandit Dataset's sample as one Criteo-layout click log, for `adserve ctr-bench` and
scripts/ctr-reference.py.

The Open Bandit Dataset (Saito et al., 2020; ZOZOTOWN, CC BY 4.0) logs which fashion item a
recommendation widget showed, in which of three positions, to whom, and whether it was clicked.
The PyPI package `obp` (Apache-2.0) ships a sample of it: 10,000 impressions for each of three
campaigns (all, men, women) under each of two logging policies (random, Bernoulli Thompson
sampling) — 60,000 impressions, about 0.4% clicked. This script merges the six files in time
order and writes each impression as one Criteo-layout line (label, 13 integer and 26
categorical columns, tab separated; empty = missing):

  integers:     position (1-3), the user's affinity to the shown item, the user's total affinity
  categoricals: campaign, campaign:item, the four user features, the item's four features (the
                numeric one rounded to two decimals), campaign:item:position

The logging policy and its propensity are left out: they describe the logger, not the impression.

    pip download obp --no-deps -d /tmp/obp
    scripts/obd-to-criteo.py --wheel /tmp/obp/obp-0.4.1-py3-none-any.whl --out /tmp/obd.tsv
    adserve ctr-bench --train /tmp/obd.tsv --train-rows 48000
    scripts/ctr-reference.py --file /tmp/obd.tsv --train-rows 48000
"""
import argparse, csv, io, sys, zipfile

CAMPAIGNS = ["all", "men", "women"]
POLICIES = ["random", "bts"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheel", required=True, help="the obp wheel (pip download obp --no-deps)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rows = []
    with zipfile.ZipFile(args.wheel) as wheel:
        def table(path):
            return list(csv.DictReader(io.TextIOWrapper(wheel.open(path), encoding="utf-8")))
        for policy in POLICIES:
            for campaign in CAMPAIGNS:
                base = f"obp/dataset/obd/{policy}/{campaign}/"
                items = {r["item_id"]: r for r in table(base + "item_context.csv")}
                for r in table(base + f"{campaign}.csv"):
                    item = items[r["item_id"]]
                    affinity = [float(v) for k, v in r.items() if k.startswith("user-item_affinity_")]
                    ints = [r["position"], str(round(float(r[f"user-item_affinity_{r['item_id']}"]))), str(round(sum(affinity)))]
                    cats = [campaign, f"{campaign}:{r['item_id']}", r["user_feature_0"], r["user_feature_1"], r["user_feature_2"],
                            r["user_feature_3"], f"{float(item['item_feature_0']):.2f}", item["item_feature_1"], item["item_feature_2"],
                            item["item_feature_3"], f"{campaign}:{r['item_id']}:{r['position']}"]
                    line = [r["click"]] + ints + [""] * (13 - len(ints)) + cats + [""] * (26 - len(cats))
                    rows.append((r["timestamp"], policy, campaign, "\t".join(line)))
    rows.sort()
    with open(args.out, "w") as f:
        for row in rows:
            f.write(row[3] + "\n")
    clicks = sum(1 for r in rows if r[3].startswith("1\t"))
    print(f"{args.out}: {len(rows)} impressions, {clicks} clicks ({clicks / len(rows):.4%}), "
          f"{rows[0][0]} to {rows[-1][0]}", file=sys.stderr)


if __name__ == "__main__":
    main()
