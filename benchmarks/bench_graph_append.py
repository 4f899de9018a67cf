"""Adding galaxies to a kNN graph: incremental extension against a full rebuild, same data.

Steps, all in one run against one fresh embedded server (``--citus``: a local Citus cluster
instead, a coordinator and 2 workers with ``--shards`` shards, the same steps through the
coordinator; needs ``python scripts/build_citus.py``):

1. ``--n`` clustered ``--dim`` vectors (:func:`galdb.datasets.vectors.clustered_vectors`,
   ``--clusters`` centres) are stored under a pseudo-model, its HNSW index is built and its
   k-graph built with :func:`galdb.propagate.graph.ensure_graph` (``--workers``
   connections). Setup: printed, not compared.
2. ``--add`` more vectors from the same distribution are stored under the same model (a
   second release), as an ingest + embed of a new release would leave them.
3. **Timed**: ``ensure_graph`` again, which extends the graph in place (rows for the new
   galaxies, updates of the old rows they enter).
4. **Timed**: ``ensure_graph(rebuild=True)`` on the same data: a full build, by
   ``--rebuild-method`` (default ``auto``: by blocks when they fit in memory, see
   :mod:`galdb.propagate.graph`; ``pgvector`` for the HNSW queries).
5. Recall@k of both graphs against exact kNN (numpy, brute force over all vectors) on
   ``--sample`` old galaxies and ``--sample`` new ones drawn at random, and the recall of
   both graphs combined in the proportion of old and new galaxies.

    python benchmarks/bench_graph_append.py --n 300000 --add 10000
    python benchmarks/bench_graph_append.py --n 20000 --add 1000     # smoke run (~1 min)
    python benchmarks/bench_graph_append.py --n 20000 --add 1000 --citus --shards 4
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from _common import (
    Figures,
    LogProgress,
    citus_server,
    command_line,
    embedded_server,
    log,
    machine,
    parser,
    print_table,
    require_citus,
    verdict,
)

from galdb.datasets.vectors import clustered_vectors, store_vectors
from galdb.db.connect import connect, database_url
from galdb.lvm.registry import ensure_index
from galdb.propagate.graph import ensure_graph

RELEASE, SPEC = "bench-graph-append", "synthetic:bench-graph-append"
TARGET_RECALL_RATIO = 0.99


def parse_args():
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(n=300_000)
    p.add_argument("--add", type=int, default=10_000, help="galaxies added (default 10,000)")
    p.add_argument("--k", type=int, default=15, help="neighbours per galaxy (default 15)")
    p.add_argument("--dim", type=int, default=128, help="vector width (default 128)")
    p.add_argument("--clusters", type=int, default=20, help="cluster centres (default 20)")
    p.add_argument("--spread", type=float, default=0.5, help="cluster width (default 0.5)")
    p.add_argument("--workers", type=int, default=2, help="ensure_graph workers (default 2)")
    p.add_argument("--sample", type=int, default=1000, help="old and new galaxies checked")
    p.add_argument(
        "--rebuild-method",
        choices=("auto", "blocks", "pgvector"),
        default="auto",
        help="ensure_graph method of the first build and the rebuild (default auto: blocks "
        "when they fit in memory)",
    )
    p.add_argument("--citus", action="store_true", help="on a local Citus cluster (2 workers)")
    p.add_argument("--shards", type=int, default=4, help="--citus: shards (default 4)")
    return p.parse_args()


@contextmanager
def galdb_server(args) -> Iterator:
    """The embedded server, or with ``--citus`` a local cluster in a temporary directory."""
    if not args.citus:
        with embedded_server(args.home, args.keep) as settings:
            yield settings
        return
    require_citus()
    root = Path(tempfile.mkdtemp(prefix="galdb-bench-append-citus-"))
    try:
        with citus_server(root, 2, args.shards) as settings:
            yield settings
    finally:
        shutil.rmtree(root, ignore_errors=True)


def graph_lists(conn, graph_id: int, galaxy_ids: np.ndarray) -> list[list[int]]:
    rows = conn.execute(
        "SELECT galaxy_id, neighbour_ids FROM galdb.knn_neighbours "
        "WHERE graph_id = %s AND galaxy_id = ANY(%s)",
        (graph_id, galaxy_ids.tolist()),
    ).fetchall()
    found = dict(rows)
    return [found.get(int(g), []) for g in galaxy_ids]


def exact(vectors: np.ndarray, ids: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """Galaxy ids of the exact k nearest of each of ``rows`` (row indices of ``vectors``)."""
    out = np.empty((len(rows), k), np.int64)
    for start in range(0, len(rows), 200):
        part = rows[start : start + 200]
        sims = vectors[part] @ vectors.T
        sims[np.arange(len(part)), part] = -np.inf
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        out[start : start + len(part)] = ids[top]
    return out


def recall(lists: list[list[int]], truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(g) & set(t)) / k for g, t in zip(lists, truth, strict=True)]))


def run(args) -> dict:
    out: dict = {}
    total = args.n + args.add
    with galdb_server(args) as settings:
        url = database_url(settings)
        with connect(settings) as conn:
            vectors, _ = clustered_vectors(
                total, args.dim, args.clusters, spread=args.spread, seed=args.seed
            )
            t = time.perf_counter()
            record, old_ids = store_vectors(
                conn, vectors[: args.n], RELEASE, SPEC, progress=LogProgress("store old")
            )
            out["store"] = time.perf_counter() - t
            t = time.perf_counter()
            ensure_index(conn, record)
            out["index"] = time.perf_counter() - t
            log(f"stored {args.n:,} x {args.dim} vectors, HNSW index in {out['index']:.1f} s")
            t = time.perf_counter()
            first = ensure_graph(
                conn,
                url,
                record,
                args.k,
                workers=args.workers,
                method=args.rebuild_method,
                progress=LogProgress("build"),
            )
            out["first"] = time.perf_counter() - t
            log(f"initial graph ({first.mode}) in {out['first']:.1f} s")
            t = time.perf_counter()
            _, new_ids = store_vectors(conn, vectors[args.n :], f"{RELEASE}-added", SPEC)
            out["store_add"] = time.perf_counter() - t
            log(f"added {args.add:,} vectors in {out['store_add']:.1f} s (HNSW updated on insert)")

            t = time.perf_counter()
            ext = ensure_graph(
                conn,
                url,
                record,
                args.k,
                workers=args.workers,
                extend_up_to=1.0,  # measure the extension whatever the share added
                progress=LogProgress("extend"),
            )
            out["extend"] = time.perf_counter() - t
            log(f"graph {ext.mode} in {out['extend']:.1f} s")
            rng = np.random.default_rng(args.seed + 1)
            ids = np.concatenate([old_ids, new_ids])
            old_rows = rng.choice(args.n, min(args.sample, args.n), replace=False)
            new_rows = args.n + rng.choice(args.add, min(args.sample, args.add), replace=False)
            sampled = {"old": old_rows, "new": new_rows}
            lists = {
                "extended": {s: graph_lists(conn, ext.graph_id, ids[r]) for s, r in sampled.items()}
            }

            t = time.perf_counter()
            reb = ensure_graph(
                conn,
                url,
                record,
                args.k,
                workers=args.workers,
                rebuild=True,
                method=args.rebuild_method,
                progress=LogProgress("rebuild"),
            )
            out["rebuild"] = time.perf_counter() - t
            log(f"graph {reb.mode} in {out['rebuild']:.1f} s")
            lists["rebuilt"] = {
                s: graph_lists(conn, reb.graph_id, ids[r]) for s, r in sampled.items()
            }
            out["modes"] = (ext.mode, reb.mode)
        truth = {s: exact(vectors, ids, r, args.k) for s, r in sampled.items()}
        out["recall"] = {
            name: {s: recall(found[s], truth[s]) for s in sampled} for name, found in lists.items()
        }
        for r in out["recall"].values():
            r["all"] = (args.n * r["old"] + args.add * r["new"]) / total
    return out


def report(args, out: dict, figures: Figures) -> None:
    print(f"\n$ {command_line()}")
    print(
        f"{args.n:,} + {args.add:,} clustered {args.dim}-d vectors ({args.clusters} clusters, "
        f"spread {args.spread}), k = {args.k}, {args.workers} workers"
        + (f"; on Citus (2 workers, {args.shards} shards)" if args.citus else "")
    )
    print(
        f"setup (not compared): stored {out['store']:.1f} s, HNSW index {out['index']:.1f} s, "
        f"initial graph of {args.n:,} {out['first']:.1f} s, "
        f"{args.add:,} added {out['store_add']:.1f} s"
    )
    ext, reb = out["recall"]["extended"], out["recall"]["rebuilt"]
    parts = ("old", "new", "all")
    print_table(
        "graph after the append (recall@k against exact kNN on the samples)",
        ["", "seconds", "recall old", "recall new", "recall all"],
        [
            [f"extend ({out['modes'][0]})", out["extend"], *(f"{ext[s]:.4f}" for s in parts)],
            [f"rebuild ({out['modes'][1]})", out["rebuild"], *(f"{reb[s]:.4f}" for s in parts)],
            [
                "ratio extend / rebuild",
                out["extend"] / out["rebuild"],
                *(f"{ext[s] / reb[s]:.4f}" for s in parts),
            ],
        ],
    )
    print(f"\nspeed-up of the extension over a rebuild: {out['rebuild'] / out['extend']:.1f}x")
    ratio = ext["all"] / reb["all"]
    ok = ratio >= TARGET_RECALL_RATIO and out["modes"] == ("extended", "built")
    print(
        f"target: recall of the extended graph >= {TARGET_RECALL_RATIO} of the rebuilt one's: "
        f"{verdict(ok)} ({ratio:.4f})"
    )
    size = f"{args.add:,} added to {args.n:,}" + (" on Citus" if args.citus else "")
    figures.add(
        f"graph extension, {size}",
        out["extend"],
        "s",
        better="lower",
        reference=out["rebuild"],
        reference_name=f"full rebuild ({args.rebuild_method}), same data",
    )
    figures.add(
        f"extended / rebuilt graph recall@{args.k}, {size}",
        ratio,
        "x",
        target=TARGET_RECALL_RATIO,
    )
    print(f"machine at the end: {machine()}")


def main() -> None:
    args = parse_args()
    figures = Figures("bench_graph_append.py")
    report(args, run(args), figures)
    figures.write(args.json)


if __name__ == "__main__":
    main()
