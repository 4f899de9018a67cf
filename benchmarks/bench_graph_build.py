"""The full kNN graph build at scale, for real: FAISS's HNSW and blocks against pgvector.

``--n`` embedding-like ``--dim`` vectors (:func:`galdb.datasets.vectors.latent_vectors`) are
stored under a pseudo-model. **Timed**, one after the other on that model:
``ensure_graph(method=m, rebuild=True)`` for each of ``--methods`` (reading the vectors, the
search, writing the rows back), with the resident memory of this process sampled during the
call against the method's estimate; after each, recall@k of the stored rows against exact
kNN (numpy) on ``--sample`` galaxies.

The reference is the pgvector build (``method="pgvector"``: one HNSW query per galaxy, in
the server). At 1M it takes most of an hour on 2 CPUs, so it runs on the first
``--pgvector-n`` of the same vectors (a model of its own): its HNSW index build and its
queries are timed apart, and the queries' time is scaled linearly to ``--n``. An HNSW
query costs more in a bigger index, so the scaled time is a lower bound and every speed-up
against it an under-estimate. ``--pgvector-n 0`` skips it; ``--pgvector-n`` equal to
``--n`` measures it for real.

    python benchmarks/bench_graph_build.py --n 1000000 --json build.json   # ~25 min, 4 GB
    python benchmarks/bench_graph_build.py --n 20000 --pgvector-n 5000     # smoke run
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
from galdb.lvm.registry import ensure_index
from galdb.propagate import blocks, hnsw_search
from galdb.propagate.graph import ensure_graph

ESTIMATE = {"blocks": blocks.memory_bytes, "faiss": hnsw_search.memory_bytes}


def exact_neighbours(vectors: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """Row indices of the exact k nearest other vectors of ``rows`` (cosine)."""
    sims = vectors[rows] @ vectors.T
    sims[np.arange(len(rows)), rows] = -np.inf
    return np.argpartition(-sims, k, axis=1)[:, :k]


def stored_recall(conn, graph_id: int, ids: np.ndarray, truth: np.ndarray, k: int) -> float:
    """recall@k of the stored rows of ``ids`` (graph ``graph_id``) against ``truth`` ids."""
    found = dict(
        conn.execute(
            "SELECT galaxy_id, neighbour_ids FROM galdb.knn_neighbours "
            "WHERE graph_id = %s AND galaxy_id = ANY(%s)",
            (graph_id, ids.tolist()),
        ).fetchall()
    )
    hits = [len(set(found.get(int(g), [])) & set(t)) for g, t in zip(ids, truth, strict=True)]
    return float(np.mean(hits)) / k


def build(conn, url, record, args, method: str) -> tuple[float, int, float]:
    """Seconds of one timed ensure_graph, the graph id, and the peak memory growth (MiB)."""
    with RssSampler() as rss:
        t = time.perf_counter()
        graph = ensure_graph(
            conn,
            url,
            record,
            args.k,
            workers=args.workers,
            method=method,
            rebuild=True,
            progress=LogProgress(f"graph ({method})"),
        )
        seconds = time.perf_counter() - t
    return seconds, graph.graph_id, rss.peak - rss.start


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--k", type=int, default=15)
    p.add_argument("--workers", type=int, default=2, help="threads or connections of a build")
    p.add_argument("--sample", type=int, default=300, help="galaxies checked against exact")
    p.add_argument(
        "--methods", default="faiss,blocks", help="in-memory methods timed at --n (comma list)"
    )
    p.add_argument(
        "--pgvector-n", type=int, default=100_000, help="galaxies of the pgvector reference"
    )
    args = p.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    if "faiss" in methods and not hnsw_search.available():
        log("faiss-cpu is not installed: the faiss method is skipped")
        methods.remove("faiss")
    figures = Figures("bench_graph_build.py")
    vectors, _ = latent_vectors(args.n, args.dim, seed=args.seed)
    rows = np.random.default_rng(args.seed + 1).choice(args.n, args.sample, replace=False)
    truth_rows = exact_neighbours(vectors, rows, args.k)
    m = min(args.pgvector_n, args.n)
    small_rows = rows[rows < m]
    if m == args.n:  # the pgvector reference is the same model: the same exact neighbours
        small_truth = truth_rows
    else:
        small_truth = exact_neighbours(vectors[:m], small_rows, args.k) if len(small_rows) else None
    log(f"exact kNN of {args.sample} galaxies computed")
    results: dict[str, dict] = {}
    with embedded_server(args.home, args.keep) as settings, connect(settings) as conn:
        url = database_url(settings)
        record, ids = store_vectors(
            conn,
            vectors,
            "bench-graph-build",
            "synthetic:bench-graph-build",
            progress=LogProgress("stored"),
        )
        small, small_ids = record, ids  # --pgvector-n equal to --n: the same model
        if 0 < m < args.n:
            small, small_ids = store_vectors(
                conn,
                vectors[:m],
                "bench-graph-build-pgvector",
                "synthetic:bench-graph-build-pgvector",
                progress=LogProgress("stored (pgvector)"),
            )
        del vectors
        for method in methods:
            seconds, graph_id, grown = build(conn, url, record, args, method)
            recall = stored_recall(conn, graph_id, ids[rows], ids[truth_rows], args.k)
            results[method] = dict(seconds=seconds, recall=recall, grown=grown)
            log(f"{method}: {seconds:.1f} s, recall@{args.k} {recall:.4f}, +{grown:,.0f} MiB")
        if m:
            t = time.perf_counter()
            ensure_index(conn, small)
            conn.commit()
            index_seconds = time.perf_counter() - t
            log(f"pgvector HNSW index of {m:,}: {index_seconds:.1f} s")
            seconds, graph_id, _ = build(conn, url, small, args, "pgvector")
            recall = stored_recall(
                conn, graph_id, small_ids[small_rows], small_ids[small_truth], args.k
            )
            results["pgvector"] = dict(
                seconds=seconds,
                index_seconds=index_seconds,
                recall=recall,
                n=m,
                scaled=seconds * args.n / m,
            )
            log(f"pgvector queries of {m:,}: {seconds:.1f} s, recall@{args.k} {recall:.4f}")
    report(args, results, figures)


def report(args, results: dict, figures: Figures) -> None:
    print(f"\n$ {command_line()}")
    print(f"{args.n:,} x {args.dim}-d latent vectors, k = {args.k}; machine: {machine()}")
    ref = results.get("pgvector")
    if ref:
        exact_scale = ref["n"] == args.n
        print(
            f"pgvector on {ref['n']:,}: index {ref['index_seconds']:.1f} s, queries "
            f"{ref['seconds']:.1f} s, recall@{args.k} {ref['recall']:.4f}; queries "
            + (
                "(measured at full size)"
                if exact_scale
                else f"scaled linearly to {args.n:,}: {ref['scaled'] / 60:.1f} min (a lower bound)"
            )
        )
    for method in ("faiss", "blocks"):
        r = results.get(method)
        if not r:
            continue
        speed = ref["scaled"] / r["seconds"] if ref else None
        estimate = ESTIMATE[method](args.n, args.dim, args.k) / 2**20
        print(
            f"{method}: {r['seconds']:.1f} s ({args.n / r['seconds']:,.0f} galaxies/s), "
            f"recall@{args.k} {r['recall']:.4f}, memory +{r['grown']:,.0f} MiB "
            f"(estimate {estimate:,.0f})"
            + (f"; {speed:.1f}x the pgvector queries" if speed else "")
        )
        name = f"kNN graph build by {method}, {args.n:,} x {args.dim}"
        if ref:
            figures.add(
                name,
                r["seconds"] / 60,
                "min",
                better="lower",
                reference=ref["scaled"] / 60,
                reference_name=f"pgvector queries, {ref['n']:,} scaled to {args.n:,} (lower bound)",
            )
            figures.add(
                f"kNN graph build speed-up, {method} over pgvector queries",
                speed,
                "x",
                target=3.0,
                note=f"recall@{args.k} {r['recall']:.3f} against pgvector's "
                f"{ref['recall']:.3f} (on {ref['n']:,})",
            )
        else:
            figures.add(name, r["seconds"] / 60, "min", better="lower")
        figures.add(
            f"kNN graph recall@{args.k} by {method}, {args.n:,}",
            r["recall"],
            "recall",
            reference=ref["recall"] if ref else None,
            reference_name=f"pgvector HNSW graph of {ref['n']:,}" if ref else "",
        )
        figures.add(
            f"kNN graph build memory growth by {method}, {args.n:,}",
            r["grown"],
            "MiB",
            better="lower",
            reference=estimate,
            reference_name="memory_bytes estimate",
        )
    figures.write(args.json)


if __name__ == "__main__":
    main()
