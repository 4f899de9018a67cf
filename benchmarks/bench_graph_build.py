"""The full kNN graph build by blocks (``ensure_graph(method="blocks")``) at scale, for real.

``--n`` embedding-like ``--dim`` vectors (:func:`galdb.datasets.vectors.latent_vectors`) are
stored under a pseudo-model; **timed**: ``ensure_graph(method="blocks")`` (reading the
vectors, the blocks search, writing the rows back), with the resident memory of this process
sampled during the call against :func:`galdb.propagate.blocks.memory_bytes`' estimate. Then
recall@k of the stored rows against exact kNN (numpy) on ``--sample`` galaxies. No HNSW index
is built (the blocks build does not use one), so the pgvector method is not run here: see
``bench_propagate.py`` for both methods on the same data.

    python benchmarks/bench_graph_build.py --n 1000000 --json build.json   # ~15 min, 4 GB
    python benchmarks/bench_graph_build.py --n 20000                       # smoke run
"""

from __future__ import annotations

import time

import numpy as np
from _common import (
    Figures,
    LogProgress,
    RssSampler,
    command_line,
    embedded_server,
    log,
    machine,
    parser,
)

from galdb.datasets.vectors import latent_vectors, store_vectors
from galdb.db.connect import connect, database_url
from galdb.propagate import blocks
from galdb.propagate.graph import ensure_graph


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--k", type=int, default=15)
    p.add_argument("--workers", type=int, default=2, help="threads of the blocks search")
    p.add_argument("--sample", type=int, default=300, help="galaxies checked against exact")
    args = p.parse_args()
    figures = Figures("bench_graph_build.py")
    vectors, _ = latent_vectors(args.n, args.dim, seed=args.seed)
    with embedded_server(args.home, args.keep) as settings, connect(settings) as conn:
        record, ids = store_vectors(
            conn,
            vectors,
            "bench-graph-build",
            "synthetic:bench-graph-build",
            progress=LogProgress("stored"),
        )
        rows = np.random.default_rng(args.seed + 1).choice(args.n, args.sample, replace=False)
        x = vectors[rows]
        sims = x @ vectors.T
        sims[np.arange(len(rows)), rows] = -np.inf
        truth = ids[np.argpartition(-sims, args.k, axis=1)[:, : args.k]]
        del vectors, sims
        log(f"exact kNN of {args.sample} galaxies computed; building the graph")
        with RssSampler() as rss:
            t = time.perf_counter()
            graph = ensure_graph(
                conn,
                database_url(settings),
                record,
                args.k,
                workers=args.workers,
                method="blocks",
                progress=LogProgress("graph"),
            )
            seconds = time.perf_counter() - t
        found = dict(
            conn.execute(
                "SELECT galaxy_id, neighbour_ids FROM galdb.knn_neighbours "
                "WHERE graph_id = %s AND galaxy_id = ANY(%s)",
                (graph.graph_id, ids[rows].tolist()),
            ).fetchall()
        )
    lists = [found.get(int(g), []) for g in ids[rows]]
    hits = [len(set(f) & set(t)) for f, t in zip(lists, truth, strict=True)]
    recall = float(np.mean(hits)) / args.k
    estimate = blocks.memory_bytes(args.n, args.dim, args.k) / 2**20
    print(f"\n$ {command_line()}")
    print(
        f"{args.n:,} x {args.dim}-d latent vectors, k = {args.k}: graph by blocks in "
        f"{seconds:.1f} s ({args.n / seconds:,.0f} galaxies/s), {graph.n_embeddings:,} rows; "
        f"recall@{args.k} against exact kNN on {args.sample} galaxies {recall:.4f}"
    )
    print(
        f"resident memory during the build: {rss.start:,.0f} MiB at start, peak "
        f"{rss.peak:,.0f} MiB (+{rss.peak - rss.start:,.0f}); estimate {estimate:,.0f} MiB"
    )
    print(f"machine at the end: {machine()}")
    figures.add(
        f"kNN graph build by blocks, {args.n:,} x {args.dim}", seconds / 60, "min", better="lower"
    )
    figures.add(f"kNN graph recall@{args.k} by blocks, {args.n:,}", recall, "recall")
    figures.add(
        f"kNN graph build memory growth, {args.n:,}",
        rss.peak - rss.start,
        "MiB",
        better="lower",
        reference=estimate,
        reference_name="memory_bytes estimate",
    )
    figures.write(args.json)


if __name__ == "__main__":
    main()
