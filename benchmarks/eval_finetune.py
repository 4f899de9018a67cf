"""Frozen embeddings + linear head versus the fine-tuned head, at few and many labels.

On each real labelled set (as ``eval_ssl_probe.py`` splits them: GZ2 spiral trains on
source_split=train and tests on validation; rings and GZ1 parent class 80/20 stratified), for
each label count the same stratified draw of training labels goes to

- ``frozen``: logistic regression on the model's embeddings (``galdb lvm probe``'s probe);
- ``finetuned``: :func:`galdb.heads.finetune.fit_finetuned` (what ``galdb head train
  --finetune`` trains: last stages unfrozen, pretraining's augmentations, class weights,
  early stopping on a held-out fifth of the drawn labels);

and prints the test AUC of each, with the seconds the fine-tuning took.

    python benchmarks/eval_finetune.py --home /work/galdb-eval \
        --model checkpoint:/work/galdb-eval/ssl-gz2-r18-64.pt --sets gz2 --labels 32,100,320,all

The home must hold the releases (see ``eval_ssl_probe.py``) embedded with the model;
``--release-suffix -eval`` reads ``gz2-eval``, ... instead: the probing halves that
``eval_recipes.py`` makes, whose images its pretraining (and an ``--init`` adaptation) never
saw.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from galdb.db.connect import connect
from galdb.db.settings import Settings
from galdb.eval.fewshot import load_images
from galdb.eval.probe import auc_of, draw_labels, load_labelled
from galdb.heads.finetune import FinetuneConfig, fit_finetuned
from galdb.lvm.pixels import pixel_refs
from galdb.lvm.pretrain import CutoutStream
from galdb.lvm.registry import load_registered, lookup

SETS = {  # release, label column, split column, test value
    "gz2": ("gz2", "spiral", "source_split", "validation"),
    "rings": ("rings", "ring", None, None),
    "gz1": ("gz1", "parent_class", None, None),
}


def frozen_auc(data, pick, y_index) -> float:
    x_train, x_test = data.vectors[data.train][pick], data.vectors[~data.train]
    scaler = StandardScaler().fit(x_train)
    clf = LogisticRegression(max_iter=2000, C=0.1, class_weight="balanced")
    clf.fit(scaler.transform(x_train), y_index[data.train][pick])
    proba = np.zeros((len(x_test), len(data.classes)))
    proba[:, clf.classes_] = clf.predict_proba(scaler.transform(x_test))
    return auc_of(data.labels[~data.train], proba, data.classes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--sets", default="gz2")
    parser.add_argument("--labels", default="32,100,320,all")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--unfreeze", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--release-suffix", default="", help="read release <set><suffix>, e.g. -eval"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    counts = [None if c == "all" else int(c) for c in args.labels.split(",")]
    rows = []
    with connect(Settings.from_env(args.home)) as conn:
        record = lookup(conn, args.model)
        loaded = load_registered(conn, record)
        prep = loaded.preprocessing
        for name in args.sets.split(","):
            release, label, split, test_value = SETS[name]
            release += args.release_suffix
            data = load_labelled(conn, record, release, label, split, test_value=test_value)
            order = np.argsort(data.galaxy_ids)
            assert (order == np.arange(len(order))).all()  # load_labelled sorts by galaxy_id
            t = time.perf_counter()
            stream = CutoutStream(pixel_refs(conn, data.galaxy_ids, release), prep)
            cutouts = torch.stack([stream[i] for i in range(len(stream))])
            centred = load_images(conn, data.galaxy_ids, prep)
            print(f"{name}: read {len(stream)} cutouts in {time.perf_counter() - t:.0f} s")
            y_index = np.array([data.classes.index(v) for v in data.labels])
            train_rows = np.flatnonzero(data.train)
            test_x = centred[torch.from_numpy(np.flatnonzero(~data.train))]
            for n in counts:
                for r in range(args.repeats if n else 1):
                    pick = draw_labels(data.labels[data.train], n, r)
                    frozen = frozen_auc(data, pick, y_index)
                    cfg = FinetuneConfig(
                        unfreeze=args.unfreeze,
                        max_epochs=args.epochs,
                        patience=args.patience,
                        seed=r,
                    )
                    rows_ = torch.from_numpy(train_rows[pick])
                    t = time.perf_counter()
                    head, metrics = fit_finetuned(
                        loaded,
                        cutouts[rows_],
                        centred[rows_],
                        y_index[train_rows[pick]],
                        len(data.classes),
                        cfg,
                    )
                    seconds = time.perf_counter() - t
                    tuned = auc_of(data.labels[~data.train], head.predict_proba(test_x),
                                   data.classes)  # fmt: skip
                    row = (name, n or "all", r, frozen, tuned, metrics["best_epoch"],
                           metrics["epochs_run"], seconds)  # fmt: skip
                    rows.append(row)
                    print(
                        f"{name} n={n or 'all'} repeat {r}: frozen {frozen:.3f}, fine-tuned "
                        f"{tuned:.3f} (best epoch {row[5]}/{row[6]}, {seconds:.0f} s)",
                        flush=True,
                    )
    print(f"\nmodel {args.model}; fine-tuning: last {args.unfreeze} stages, up to "
          f"{args.epochs} epochs, patience {args.patience}")  # fmt: skip
    print("| set | labels | repeat | frozen AUC | fine-tuned AUC | best/run epochs | s |")
    print("|---|---|---|---|---|---|---|")
    for name, n, r, frozen, tuned, best, run, seconds in rows:
        print(f"| {name} | {n} | {r} | {frozen:.3f} | {tuned:.3f} | {best}/{run} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
