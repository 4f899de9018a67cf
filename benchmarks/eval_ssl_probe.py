"""A pretrained encoder against random init of the same backbone, on the real labelled sets.

For each model: kNN (k=10) accuracy and linear-probe AUC with 32, 100 and all training labels
(mean ± std over ``--repeats`` draws) on GZ2 spiral (train on source_split=train, test on
validation), GZ1 parent class (stratified 80/20) and GZ DECaLS rings (stratified 80/20).

    python benchmarks/eval_ssl_probe.py --home /work/galdb-eval --model galdb:default
    python benchmarks/eval_ssl_probe.py --home /work/galdb-eval --checkpoint ssl.pt

The model is any spec (``--model``) or a file from ``galdb lvm pretrain`` (``--checkpoint``);
the reference is ``timm:<its arch>`` (random init) at the same preprocessing. The home must
hold the releases gz2, gz1 and rings (the script ingests them from ../shared/data/real if they
are missing). ``--fp32 PATH``: also compare the model's embeddings with those of the float32
checkpoint PATH it was converted from (cosine similarity per image, on GZ2 images).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from galdb.db import admin
from galdb.db.connect import connect, database_url
from galdb.db.settings import Settings
from galdb.eval.probe import knn_accuracy, linear_probe, load_labelled
from galdb.ingest import Columns, ingest
from galdb.lvm import registry
from galdb.lvm.embed import embed
from galdb.lvm.pixels import PixelRef, read_pixels
from galdb.lvm.preprocess import to_tensor
from galdb.lvm.specs import LoadedModel, load_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Figures, log, machine, parser  # noqa: E402

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
TASKS = {  # release: label column, split column, test value
    "gz2": ("spiral", "source_split", "validation"),
    "gz1": ("parent_class", None, None),
    "rings": ("ring", None, None),
}
LABELS = (32, 100, None)


def ensure_releases(conn, sets: list[str]) -> None:
    have = {r[0] for r in conn.execute("SELECT name FROM galdb.releases")}
    if "gz2" in sets and "gz2" not in have:
        ingest(conn, REAL / "gz2_kaggle_spiral_binary" / "labels.csv", "gz2", survey="SDSS")
    if "gz1" in sets and "gz1" not in have:
        ingest(
            conn,
            REAL / "gz1_sdss_6class" / "labels.csv",
            "gz1",
            survey="SDSS",
            columns=Columns(id="objid"),
        )
    if "rings" in sets and "rings" not in have:
        root = REAL / "zoobot_gzdecals_rings"
        ingest(conn, root, "rings", catalog=root / "catalog.csv", survey="DESI Legacy Surveys")
    conn.commit()


def evaluate(conn, model_id: int, sets: list[str], repeats: int) -> list[tuple]:
    record = registry.lookup(conn, str(model_id))
    rows = []
    for release in sets:
        label, split, test = TASKS[release]
        data = load_labelled(conn, record, release, label, split, "train", test)
        probes = [linear_probe(data, n, repeats) for n in LABELS]
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


def fp32_agreement(model: LoadedModel, fp32: LoadedModel, n: int = 256) -> np.ndarray:
    """Cosine similarity of the two models' embeddings of the first ``n`` GZ2 images."""
    files = sorted((REAL / "gz2_kaggle_spiral_binary" / "images").glob("*.jpg"))[:n]
    x = torch.stack(
        [to_tensor(read_pixels(PixelRef(str(f))), [], model.preprocessing) for f in files]
    )
    with torch.no_grad():
        a, b = model.model(x), fp32.model(x)
    return torch.nn.functional.cosine_similarity(a, b, dim=1).numpy()


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--model", help="the encoder's spec, e.g. galdb:default")
    p.add_argument("--checkpoint", type=Path, help="or a checkpoint file (checkpoint:PATH)")
    p.add_argument("--sets", default="gz2,gz1,rings", help="labelled sets to probe")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--fp32", type=Path, help="float32 checkpoint to compare embeddings with")
    args = p.parse_args()
    if args.home is None or (args.model is None) == (args.checkpoint is None):
        p.error("give --home and one of --model or --checkpoint")
    spec = args.model or f"checkpoint:{args.checkpoint.resolve()}"
    sets = args.sets.split(",")
    log(f"start; {machine()}")
    settings = Settings.from_env(args.home)
    admin.init(settings)
    model = load_model(spec)
    prep = model.preprocessing
    random_init = load_model(
        f"timm:{model.arch}", input_size=prep.input_size, crop_fraction=prep.crop_fraction
    )
    results = {}
    with connect(settings) as conn:
        ensure_releases(conn, sets)
        for name, loaded in ((spec, model), ("random init", random_init)):
            t = time.perf_counter()
            summary = embed(conn, database_url(settings), loaded, workers=args.workers)
            log(
                f"embedded {summary.embedded} with {loaded.spec} in "
                f"{time.perf_counter() - t:.0f} s (model {summary.model_id})"
            )
            results[name] = evaluate(conn, summary.model_id, sets, args.repeats)
    print(
        f"\n{spec} ({model.arch}, {prep.input_size} px, crop {prep.crop_fraction}) against "
        f"random init of the same architecture; {args.repeats} label draws"
    )
    print("| model | set | label | train/test | kNN10 acc | AUC@32 | AUC@100 | AUC@all |")
    print("|---|---|---|---|---|---|---|---|")
    for name, rows in results.items():
        for release, label, n_train, n_test, knn, a32, a100, aall in rows:
            print(
                f"| {name} | {release} | {label} | {n_train}/{n_test} | {knn:.3f} | "
                f"{a32[0]:.3f}±{a32[1]:.3f} | {a100[0]:.3f}±{a100[1]:.3f} | {aall[0]:.3f} |"
            )
    figures = Figures("eval_ssl_probe.py")
    for ours, ref in zip(results[spec], results["random init"], strict=True):
        for i, n in enumerate(LABELS):
            figures.add(
                f"{ours[0]} {ours[1]} linear-probe AUC@{n or 'all'}",
                ours[5 + i][0],
                "AUC",
                reference=ref[5 + i][0],
                reference_name="random init",
            )
        figures.add(f"{ours[0]} kNN10 accuracy", ours[4], "accuracy", reference=ref[4])
    if args.fp32:
        cos = fp32_agreement(model, load_model(f"checkpoint:{args.fp32.resolve()}"))
        print(
            f"\nfloat16 weights against the float32 checkpoint, {len(cos)} GZ2 images: cosine "
            f"similarity of embeddings min {cos.min():.6f}, median {np.median(cos):.6f}"
        )
        figures.add("fp16 vs fp32 embedding cosine (min)", float(cos.min()), "cosine")
    log(f"end; {machine()}")
    figures.write(args.json)


if __name__ == "__main__":
    main()
