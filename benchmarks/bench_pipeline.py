"""A release appended to a catalog flows through the pipeline: time from ingest to every stage
done, and the share of it that is the kNN graph (extended in place) against a full rebuild.

1. A base release of ``--n`` galaxies (HDF5 in the ssl-legacysurvey layout, 32-px noise
   images from ``galdb.datasets.hdf5``), embedded with ``--model``; a classification task with
   300 catalog labels and a materialized head; its graph built; a pipeline that predicts and
   propagates the task.
2. **Timed:** a release of ``--add`` galaxies is ingested, the pipeline started, and the worker
   drains it (embed → predict → graph → propagate); each stage's time is read from its job.
3. **Timed for comparison:** a full rebuild of the graph on the same data.

    python benchmarks/bench_pipeline.py --n 300000 --add 100000
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _common import Figures, command_line, embedded_server, log, machine, parser  # noqa: E402

from galdb.datasets.hdf5 import write_ssl_legacysurvey  # noqa: E402
from galdb.db.connect import connect, database_url  # noqa: E402
from galdb.heads.materialize import materialize  # noqa: E402
from galdb.heads.versions import train_head  # noqa: E402
from galdb.ingest import ingest  # noqa: E402
from galdb.ingest.runs import release_id_of  # noqa: E402
from galdb.jobs import pipelines  # noqa: E402
from galdb.jobs.worker import run_worker  # noqa: E402
from galdb.labels.store import import_labels  # noqa: E402
from galdb.labels.tasks import create_task  # noqa: E402
from galdb.lvm.embed import embed  # noqa: E402
from galdb.lvm.registry import lookup  # noqa: E402
from galdb.lvm.specs import load_model  # noqa: E402
from galdb.propagate.graph import EXTEND_UP_TO, ensure_graph  # noqa: E402

STAGES = ("embed", "predict", "graph", "propagate")


def base_release(settings, conn, args, tmp: Path):
    """The base catalog, embedded, with a task, its head, its graph and a pipeline."""
    h5 = write_ssl_legacysurvey(tmp / "base.h5", args.n, size=32, seed=args.seed)
    t = time.perf_counter()
    ingest(conn, h5, "base")
    log(f"base: {args.n:,} galaxies ingested in {time.perf_counter() - t:.1f} s")
    loaded = load_model(args.model, input_size=32)
    t = time.perf_counter()
    summary = embed(
        conn, database_url(settings), loaded, release_id=release_id_of(conn, "base"),
        workers=args.workers,
    )  # fmt: skip
    log(f"base embedded in {time.perf_counter() - t:.1f} s ({summary.images_per_second:.0f}/s)")
    record = lookup(conn, str(summary.model_id))
    task = create_task(conn, "bench_pipe", "classification", classes=["a", "b"])
    picks = np.random.default_rng(args.seed).choice(args.n, 300, replace=False)
    rows = conn.execute(
        "SELECT source_id FROM galdb.galaxies WHERE release_id = %s ORDER BY galaxy_id",
        (release_id_of(conn, "base"),),
    ).fetchall()
    chunk = [(i, rows[p][0], "ab"[i % 2]) for i, p in enumerate(picks)]
    import_labels(conn, task, release_id_of(conn, "base"), [chunk], author="bench")
    version = train_head(conn, task, record)
    conn.commit()
    materialize(conn, task, version.version_id)
    t = time.perf_counter()
    ensure_graph(conn, database_url(settings), record, args.k, workers=2)
    log(f"base graph (k={args.k}) built in {time.perf_counter() - t:.1f} s")
    pipelines.set_pipeline(conn, record, propagate=[task.name], k=args.k)
    conn.commit()
    return record


def append(settings, conn, args, tmp: Path) -> tuple[float, dict]:
    """Ingest the new release, start the pipeline, drain it; total seconds and per stage."""
    h5 = write_ssl_legacysurvey(tmp / "new.h5", args.add, size=32, seed=args.seed + 1)
    t = time.perf_counter()
    summary = ingest(conn, h5, "appended")
    ingest_seconds = time.perf_counter() - t
    pipelines.start(conn, "appended", release_id_of(conn, "appended"), summary.run_id)
    conn.commit()
    run_worker(settings, once=True, log=lambda _: None)
    total = time.perf_counter() - t
    stages = {"ingest": ingest_seconds}
    for stage, status, seconds in conn.execute(
        "SELECT kind, status, extract(epoch FROM finished_at - started_at) FROM galdb.jobs "
        "WHERE payload->>'release' = 'appended' ORDER BY job_id"
    ):
        if status != "done":
            raise SystemExit(f"stage {stage} ended {status}")
        stages[stage] = float(seconds)
    return total, stages


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(n=300_000)
    p.add_argument("--add", type=int, default=100_000, help="galaxies in the appended release")
    p.add_argument("--model", default="timm:test_resnet", help="the LVM (default: a tiny one)")
    p.add_argument("--k", type=int, default=15)
    p.add_argument("--workers", type=int, default=2, help="embed DataLoader workers")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp, embedded_server(args.home, args.keep) as settings:
        with connect(settings) as conn:
            record = base_release(settings, conn, args, Path(tmp))
            total, stages = append(settings, conn, args, Path(tmp))
            log(f"appended {args.add:,} galaxies through the pipeline in {total:.1f} s")
            t = time.perf_counter()
            ensure_graph(conn, database_url(settings), record, args.k, workers=2, rebuild=True)
            rebuild = time.perf_counter() - t
            log(f"full graph rebuild on the same data: {rebuild:.1f} s")
    print(f"\n$ {command_line()}\n{machine()}")
    print(
        f"{args.add:,} galaxies appended to a {args.n:,}-galaxy catalog ({args.model} at 32 px, "
        f"k={args.k}): ingest to every stage done in {total:.1f} s"
    )
    for stage in ("ingest", *STAGES):
        seconds = stages.get(stage, float("nan"))
        print(f"  {stage:<10} {seconds:8.1f} s  ({seconds / total:5.1%})")
    graph = stages.get("graph", float("nan"))
    print(
        f"graph stage {graph:.1f} s (extended in place up to {EXTEND_UP_TO:.0%} new galaxies, "
        f"rebuilt above) against a full rebuild of "
        f"{rebuild:.1f} s: {rebuild / graph:.1f}x; with a rebuild the pipeline would take "
        f"about {total - graph + rebuild:.1f} s"
    )
    figures = Figures("bench_pipeline.py")
    figures.add(
        f"{args.add:,} galaxies appended to {args.n:,}: ingest to every stage done",
        total,
        "s",
        better="lower",
        note=", ".join(f"{k} {v:.1f} s" for k, v in stages.items()),
    )
    figures.add(
        "graph stage (extended in place)",
        graph,
        "s",
        better="lower",
        reference=rebuild,
        reference_name="full graph rebuild of the same data",
    )
    figures.write(args.json)


if __name__ == "__main__":
    main()
