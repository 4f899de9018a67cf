"""Pretrained checkpoint versus random init of the same backbone, on the real labelled sets.

For each model: kNN (k=10) accuracy and linear-probe AUC with 32, 100 and all training labels
(mean ± std over 5 draws) on GZ2 spiral (train on source_split=train, test on validation),
GZ1 parent class (stratified 80/20) and GZ DECaLS rings (stratified 80/20).

    python benchmarks/eval_ssl_probe.py --home /work/galdb-eval --checkpoint ssl.pt

The home must hold the releases gz2, gz1 and rings (the script ingests them from
../shared/data/real if they are missing) and the checkpoint from `galdb lvm pretrain`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from galdb.db import admin
from galdb.db.connect import connect, database_url
from galdb.db.settings import Settings
from galdb.eval.probe import knn_accuracy, linear_probe, load_labelled
from galdb.ingest import Columns, ingest
from galdb.lvm import registry
from galdb.lvm.embed import embed
from galdb.lvm.specs import load_model

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
TASKS = [  # release, label column, split column, test value
    ("gz2", "spiral", "source_split", "validation"),
    ("gz1", "parent_class", None, None),
    ("rings", "ring", None, None),
]


def ensure_releases(conn) -> None:
    have = {r[0] for r in conn.execute("SELECT name FROM galdb.releases")}
    if "gz2" not in have:
        ingest(conn, REAL / "gz2_kaggle_spiral_binary" / "labels.csv", "gz2", survey="SDSS")
    if "gz1" not in have:
        ingest(
            conn,
            REAL / "gz1_sdss_6class" / "labels.csv",
            "gz1",
            survey="SDSS",
            columns=Columns(id="objid"),
        )
    if "rings" not in have:
        root = REAL / "zoobot_gzdecals_rings"
        ingest(conn, root, "rings", catalog=root / "catalog.csv", survey="DESI Legacy Surveys")


def evaluate(conn, model_id: int, repeats: int) -> list[tuple]:
    record = registry.lookup(conn, str(model_id))
    rows = []
    for release, label, split, test in TASKS:
        data = load_labelled(conn, record, release, label, split, "train", test)
        probes = [linear_probe(data, n, repeats) for n in (32, 100, None)]
        rows.append(
            (
                release,
                label,
                int(data.train.sum()),
                int((~data.train).sum()),
                knn_accuracy(data),
                *[(p.auc_mean, p.auc_std) for p in probes],
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    settings = Settings.from_env(args.home)
    admin.init(settings)
    pretrained = load_model(f"checkpoint:{args.checkpoint.resolve()}")
    prep = pretrained.preprocessing
    random_init = load_model(
        f"timm:{pretrained.arch}", input_size=prep.input_size, crop_fraction=prep.crop_fraction
    )
    results = {}
    with connect(settings) as conn:
        ensure_releases(conn)
        for name, loaded in (("pretrained", pretrained), ("random init", random_init)):
            t = time.perf_counter()
            summary = embed(conn, database_url(settings), loaded, workers=args.workers)
            print(
                f"embedded {summary.embedded} with {loaded.spec} in "
                f"{time.perf_counter() - t:.0f} s (model {summary.model_id})",
                flush=True,
            )
            results[name] = evaluate(conn, summary.model_id, args.repeats)
    print(
        f"\ncheckpoint {args.checkpoint} ({pretrained.arch}, {prep.input_size} px, "
        f"crop {prep.crop_fraction}) vs random init of the same architecture"
    )
    print("| model | set | label | train/test | kNN10 acc | AUC@32 | AUC@100 | AUC@all |")
    print("|---|---|---|---|---|---|---|---|")
    for name, rows in results.items():
        for release, label, n_train, n_test, knn, a32, a100, aall in rows:
            print(
                f"| {name} | {release} | {label} | {n_train}/{n_test} | {knn:.3f} | "
                f"{a32[0]:.3f}±{a32[1]:.3f} | {a100[0]:.3f}±{a100[1]:.3f} | {aall[0]:.3f} |"
            )


if __name__ == "__main__":
    main()
