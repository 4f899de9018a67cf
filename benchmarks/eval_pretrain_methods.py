"""Pretraining recipes at an equal number of optimizer steps: method x backbone -> probe AUC.

Each recipe (``method:arch``) is pretrained with ``galdb lvm pretrain``'s library call on the
home's cutouts (all releases: transductive, labels unused) for the same epochs, batch size
and input size, so every recipe takes the same number of optimizer steps (not the same
minutes: a smaller backbone's steps are cheaper); then it embeds the releases and reports
the linear-probe AUC at 32, 100 and all labels on GZ2, rings and GZ1 as
``eval_ssl_probe.py`` does.

    python benchmarks/eval_pretrain_methods.py --home DIR --out-dir ckpts \
        --recipes simclr:resnet18,simsiam:resnet18,simsiam:resnet10t --epochs 2

The home must hold the releases gz2, gz1 and rings (``eval_ssl_probe.py`` ingests them).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from eval_ssl_probe import ensure_releases, evaluate

from galdb.db import admin
from galdb.db.connect import connect, database_url
from galdb.db.settings import Settings
from galdb.lvm.embed import embed
from galdb.lvm.pretrain import PretrainConfig, pretrain
from galdb.lvm.specs import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--recipes", default="simclr:resnet18,simsiam:resnet18")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--minutes", type=float, default=30.0, help="cap per recipe")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    settings = Settings.from_env(args.home)
    admin.init(settings)
    results = []
    with connect(settings) as conn:
        ensure_releases(conn)
        conn.commit()
        for recipe in args.recipes.split(","):
            method, arch = recipe.split(":")
            out = args.out_dir / f"{method}-{arch}-{args.input_size}.pt"
            cfg = PretrainConfig(
                arch=arch,
                method=method,
                input_size=args.input_size,
                batch_size=args.batch_size,
                epochs=args.epochs,
                minutes=args.minutes,
                threads=args.threads,
                checkpoint_minutes=5,
            )
            s = pretrain(conn, cfg, out)
            print(
                f"{recipe}: {s.steps} steps in {s.seconds / 60:.1f} min, loss "
                f"{s.losses[0]:.3f} -> {s.losses[-1]:.3f}",
                flush=True,
            )
            t = time.perf_counter()
            summary = embed(conn, database_url(settings), load_model(f"checkpoint:{out}"))
            print(f"embedded {summary.embedded} in {time.perf_counter() - t:.0f} s", flush=True)
            rows = evaluate(conn, summary.model_id, args.repeats)
            results.append((recipe, s.steps, s.seconds, rows))
            for release, _, _, _, _, a32, a100, aall in rows:
                print(f"  {release}: AUC@32 {a32[0]:.3f} @100 {a100[0]:.3f} @all {aall[0]:.3f}")
    print(
        f"\nequal steps: {args.epochs} epochs x batch {args.batch_size} at "
        f"{args.input_size} px on every cutout of the home"
    )
    print("| recipe | steps | minutes | set | kNN10 | AUC@32 | AUC@100 | AUC@all |")
    print("|---|---|---|---|---|---|---|---|")
    for recipe, steps, seconds, rows in results:
        for release, _, _, _, knn, a32, a100, aall in rows:
            print(
                f"| {recipe} | {steps} | {seconds / 60:.1f} | {release} | {knn:.3f} | "
                f"{a32[0]:.3f}±{a32[1]:.3f} | {a100[0]:.3f}±{a100[1]:.3f} | {aall[0]:.3f} |"
            )


if __name__ == "__main__":
    main()
