"""Few-shot curves on the real labelled sets, and regression heads on simulated truth.

For each labelled real set (GZ2 spiral / not spiral, GZ DECaLS rings, optionally GZ1 parent
class) this makes a task, imports the catalog labels, trains a head (printing its
cross-validated metrics) and runs ``galdb eval fewshot`` (head, propagation, head with a
simulated reviewer, ResNet18 from scratch). With ``--sim N`` it also simulates N galaxies and
trains regression heads on their true half-light radius, Sersic index and ellipticity.

    python benchmarks/eval_fewshot.py --home /work/galdb-eval --checkpoint ssl.pt \
        --sets gz2,rings --repeats 2 --sim 600

The home must hold the releases gz2, gz1 and rings (ingested from ../shared/data/real if
missing, see eval_ssl_probe.py).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import command_line, log, machine  # noqa: E402
from eval_ssl_probe import ensure_releases  # noqa: E402

from galdb.db import admin  # noqa: E402
from galdb.db.connect import connect, database_url  # noqa: E402
from galdb.db.settings import Settings  # noqa: E402
from galdb.errors import GaldbError  # noqa: E402
from galdb.eval.baseline import BaselineConfig  # noqa: E402
from galdb.eval.curves import markdown_table  # noqa: E402
from galdb.eval.fewshot import FewshotConfig, run_fewshot  # noqa: E402
from galdb.heads.materialize import materialize  # noqa: E402
from galdb.heads.versions import train_head  # noqa: E402
from galdb.ingest import ingest  # noqa: E402
from galdb.ingest.runs import release_id_of  # noqa: E402
from galdb.labels.store import catalog_chunks, import_labels  # noqa: E402
from galdb.labels.tasks import create_task, get_task  # noqa: E402
from galdb.lvm.embed import embed  # noqa: E402
from galdb.lvm.registry import lookup, preprocessing_of  # noqa: E402
from galdb.lvm.specs import load_model  # noqa: E402
from galdb.sim import simulate_release  # noqa: E402


@dataclass(frozen=True)
class LabelledSet:
    task: str
    release: str
    column: str
    classes: tuple[str, ...]
    mapping: dict
    label_counts: tuple[int, ...]


SETS = {
    "gz2": LabelledSet(
        "gz2_spiral", "gz2", "label_name", ("non_spiral", "spiral"), {}, (10, 20, 50, 100, 200, 500)
    ),
    "rings": LabelledSet(
        "decals_ring", "rings", "ring", ("not_ring", "ring"), {"0": "not_ring", "1": "ring"},
        (10, 20, 50, 100),
    ),
    "gz1": LabelledSet(
        "gz1_parent", "gz1", "parent_class", ("dk", "elliptical", "merger", "spiral"), {},
        (10, 20, 50, 100, 200, 500, 1000),
    ),
}  # fmt: skip
SIM_TARGETS = {  # task: (catalog column, unit)
    "sim_half_light_radius": ("half_light_radius_arcsec", "arcsec"),
    "sim_sersic_n": ("sersic_n", ""),
    "sim_ellipticity": ("ellipticity", ""),
}


def ensure_task(conn, name: str, kind: str, release: str, column: str, **kwargs):
    """The task with the release's catalog column imported as catalog labels."""
    mapping = kwargs.pop("mapping", {})
    try:
        task = get_task(conn, name)
    except GaldbError:
        task = create_task(conn, name, kind, **kwargs)
    rid = release_id_of(conn, release)
    summary = import_labels(
        conn,
        task,
        rid,
        catalog_chunks(conn, rid, column),
        author=f"{release}.{column}",
        mapping=mapping,
    )
    log(f"{name}: {summary.stored} labels from {release}.{column} ({summary.invalid} invalid)")
    return task


def head_metrics(conn, task, record) -> dict:
    version = train_head(conn, task, record)
    conn.commit()
    materialize(conn, task, version.version_id)
    return version.metrics


def run_sets(conn, settings, record, args) -> None:
    tables = []
    for key in args.sets.split(","):
        spec = SETS[key]
        task = ensure_task(
            conn, spec.task, "classification", spec.release, spec.column,
            classes=list(spec.classes), mapping=spec.mapping,
        )  # fmt: skip
        metrics = head_metrics(conn, task, record)
        log(f"{spec.task} head on all labels, 5-fold CV: " + _fmt(metrics))
        config = FewshotConfig(
            label_counts=spec.label_counts,
            repeats=args.repeats,
            baseline=BaselineConfig(epochs=args.baseline_epochs),
        )
        started = time.perf_counter()
        points = run_fewshot(
            conn,
            task,
            record,
            config,
            args.out,
            preprocessing=preprocessing_of(conn, record),
            log=log,
        )
        minutes = (time.perf_counter() - started) / 60
        tables.append((spec, markdown_table(points), minutes))
    for spec, table, minutes in tables:
        print(f"\n### {spec.task} ({spec.release}.{spec.column}; {minutes:.0f} min)\n")
        print(table)


def run_sim(conn, settings, loaded, n: int, out: Path) -> None:
    folder = settings.home / f"sim-eval-{n}"
    catalog = folder / "catalog.csv"
    if not catalog.exists():
        simulate_release(folder, n, seed=7, size=64)
    release = f"sim-eval-{n}"
    ingest(conn, folder, release, catalog=catalog, survey="galdb-sim")
    summary = embed(conn, database_url(settings), loaded, workers=0)
    record = lookup(conn, str(summary.model_id))
    rows = []
    for name, (column, unit) in SIM_TARGETS.items():
        task = ensure_task(conn, name, "regression", release, column, unit=unit or None)
        m = head_metrics(conn, task, record)
        rows.append((name, m["cv_r2"], m["cv_rmse"], m["cv_within_1sigma"], m["alpha"]))
    print(f"\n### regression heads on {n} simulated galaxies (5-fold CV)\n")
    print("| task | R² | RMSE | within 1σ | ridge alpha |")
    print("|---|---|---|---|---|")
    for name, r2, rmse, within, alpha in rows:
        print(f"| {name} | {r2:.3f} | {rmse:.3f} | {within:.2f} | {alpha:g} |")


def _fmt(metrics: dict) -> str:
    keys = ("cv_auc", "cv_balanced_accuracy", "cv_ece_uncalibrated", "cv_ece", "n_folds")
    return ", ".join(f"{k} {metrics[k]:.3f}" for k in keys if metrics.get(k) is not None)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--sets", default="gz2,rings")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--baseline-epochs", type=int, default=20)
    parser.add_argument("--sim", type=int, default=0, help="Simulated galaxies (0: skip).")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    print(command_line())
    print(machine())
    settings = Settings.from_env(args.home)
    admin.init(settings)
    args.out = args.out or settings.home / "eval"
    loaded = load_model(f"checkpoint:{args.checkpoint.resolve()}")
    with connect(settings) as conn:
        ensure_releases(conn)
        summary = embed(conn, database_url(settings), loaded, workers=0)
        record = lookup(conn, str(summary.model_id))
        log(f"model {record.model_id}: {record.spec}")
        if args.sets:
            run_sets(conn, settings, record, args)
        if args.sim:
            run_sim(conn, settings, loaded, args.sim, args.out)


if __name__ == "__main__":
    main()
