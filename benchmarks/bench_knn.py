"""kNN benchmark: pgvector HNSW (halfvec, cosine) against FAISS HNSW and exact numpy.

What is measured, all in one run on the same vectors and the same 1,000 held-out queries:

* pgvector: HNSW index build time (``registry.ensure_index``: m=16, ef_construction=64), then
  for each ef_search: single-query latency (p50/p90 ms, one prepared statement per query,
  binary ``halfvec`` parameter) and batched throughput (queries/s) through
  ``galdb.nearest_vectors(halfvec[], 10, model)`` with 100 query vectors per statement;
* FAISS ``IndexHNSWFlat`` (inner product on normalised vectors, M=16, efConstruction=64,
  searched with one thread): build time, batched queries/s, single-query p50;
* exact top-10 by cosine with numpy (chunked matrix products): the ground truth of
  recall@10, and its own queries/s.

Vectors ("realistic structure"): a 32-d latent ``z`` is drawn from a mixture of 1,000
Gaussian clusters whose sizes follow a Zipf-like law (weight ~ 1/rank^1.1) and whose widths
vary from 0.3 to 1.2; ``x = normalise(A @ z + noise)`` with a fixed random 32->512 projection
``A`` and isotropic noise (sigma 0.02 per dimension). The data thus lie near a 32-d
subspace, clustered and unevenly dense, on the unit sphere, as image embeddings do. Vectors
are rounded to float16 (what ``halfvec`` stores) and re-normalised before FAISS and numpy
see them, so all three search the same points. Queries are held-out draws from the same
distribution.

Run (from the repository root, in the virtualenv)::

    python benchmarks/bench_knn.py --n 100000
    python benchmarks/bench_knn.py --n 1000000 --keep --home /tmp/knn   # slow HNSW build

The machine is noisy: compare the figures of one run with each other (the ratio column),
not across runs.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from _common import LogProgress, embedded_server

from galdb.db.connect import connect

DIM, LATENT, CLUSTERS, K = 512, 32, 1_000, 10
SPEC = "synthetic:knn-bench"
EF_SEARCH = (40, 100, 200)
_T0 = time.perf_counter()


def say(message: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {message}", flush=True)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=1_000_000, help="indexed vectors")
    p.add_argument("--queries", type=int, default=1_000)
    p.add_argument("--single", type=int, default=300, help="queries timed one by one")
    p.add_argument("--batch", type=int, default=100, help="query vectors per statement")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--maintenance-workers",
        type=int,
        default=1,
        help="max_parallel_maintenance_workers for the index build",
    )
    p.add_argument("--faiss-build-threads", type=int, default=2)
    p.add_argument("--home", type=Path, help="galdb home, kept (default: fresh temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the temporary home at the end")
    return p.parse_args()


# ---------------------------------------------------------------- vectors


def make_vectors(n: int, seed: int) -> np.ndarray:
    """n unit vectors (float32, float16-rounded) from the clustered low-dimension model."""
    rng = np.random.default_rng(seed)
    design = np.random.default_rng(12345)  # same mixture and projection for base and queries
    centres = design.normal(size=(CLUSTERS, LATENT)).astype(np.float32)
    widths = design.uniform(0.3, 1.2, size=CLUSTERS).astype(np.float32)
    weights = 1.0 / np.arange(1, CLUSTERS + 1) ** 1.1
    project = (design.normal(size=(LATENT, DIM)) / np.sqrt(LATENT)).astype(np.float32)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        c = rng.choice(CLUSTERS, size=m, p=weights / weights.sum())
        z = centres[c] + widths[c, None] * rng.normal(size=(m, LATENT)).astype(np.float32)
        x = z @ project + 0.02 * rng.normal(size=(m, DIM)).astype(np.float32)
        out[start : start + m] = _unit(_unit(x).astype(np.float16).astype(np.float32))
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_topk(base: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, float]:
    """Exact top-K row indices by cosine (chunked), and the queries/s it ran at."""
    started = time.perf_counter()
    best_s = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(base), 100_000):
        scores = queries @ base[start : start + 100_000].T
        top = np.argpartition(-scores, K, axis=1)[:, :K]
        best_s = np.hstack([best_s, np.take_along_axis(scores, top, 1)])
        best_i = np.hstack([best_i, top + start])
        keep = np.argsort(-best_s, axis=1)[:, :K]
        best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
    return best_i, len(queries) / (time.perf_counter() - started)


def recall(found: list[list[int]] | np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth.tolist(), strict=True))
    return hits / truth.size


# ---------------------------------------------------------------- pgvector


def load_pg(conn, base: np.ndarray):
    """Fake model row, catalog-only galaxies, vectors by binary COPY; return the record."""
    from galdb.datasets.vectors import store_vectors

    progress = LogProgress("pgvector: vectors written")
    progress.start(len(base))
    return store_vectors(conn, base, "knn-bench", SPEC, progress=progress)


def build_pg_index(conn, record, workers: int) -> float:
    from galdb.lvm import registry

    conn.execute(
        "SELECT set_config('max_parallel_maintenance_workers', %s, false)", (str(workers),)
    )
    started = time.perf_counter()
    registry.ensure_index(conn, record)
    return time.perf_counter() - started


def pg_single(conn, record, queries: np.ndarray, ids: np.ndarray) -> tuple[list[float], float]:
    """Per-query latencies (ms) of a prepared direct ORDER BY ... LIMIT; and recall."""
    from pgvector import HalfVector

    query = (
        f"SELECT galaxy_id FROM galdb.{record.partition} "
        f"ORDER BY embedding::halfvec({DIM}) <=> %s::halfvec({DIM}) LIMIT {K}"
    )
    times, found = [], []
    for q in queries:
        started = time.perf_counter()
        rows = conn.execute(query, (HalfVector(q),), prepare=True, binary=True).fetchall()
        times.append((time.perf_counter() - started) * 1e3)
        found.append([r[0] for r in rows])
    return times, _rows_to_index(found, ids)


def pg_batched(conn, queries: np.ndarray, batch: int) -> tuple[list[list[int]], float]:
    """All queries through galdb.nearest_vectors, ``batch`` per statement; and queries/s."""
    from pgvector import HalfVector

    found: list[list[int]] = []
    started = time.perf_counter()
    for start in range(0, len(queries), batch):
        chunk = [HalfVector(q) for q in queries[start : start + batch]]
        rows = conn.execute(
            "SELECT query_index, galaxy_id FROM galdb.nearest_vectors(%s::halfvec[], %s, %s)",
            (chunk, K, SPEC),
            binary=True,
        ).fetchall()
        per = [[] for _ in chunk]
        for qi, gid in rows:
            per[qi - 1].append(gid)
        found.extend(per)
    return found, len(queries) / (time.perf_counter() - started)


def _rows_to_index(found: list[list[int]], ids: np.ndarray) -> list[list[int]]:
    """galaxy ids -> row numbers of ``base`` (ids were assigned in row order)."""
    lookup = {int(g): i for i, g in enumerate(ids)}
    return [[lookup[g] for g in f] for f in found]


def run_pg(conn, record, ids, queries, truth, args) -> list[dict]:
    conn.autocommit = True
    results = []
    for ef in EF_SEARCH:
        conn.execute(f"SET hnsw.ef_search = {ef}")
        pg_single(conn, record, queries[:20], ids)  # warm up: prepare, cache pages
        times, found_single = pg_single(conn, record, queries[: args.single], ids)
        found, qps = pg_batched(conn, queries, args.batch)
        row = dict(
            method="pgvector",
            ef=ef,
            recall=recall(_rows_to_index(found, ids), truth),
            recall_single=recall(found_single, truth[: args.single]),
            p50=np.percentile(times, 50),
            p90=np.percentile(times, 90),
            single_qps=len(times) / (sum(times) / 1e3),
            qps=qps,
        )
        say(
            f"pgvector ef_search={ef}: recall@10 {row['recall']:.4f}, p50 {row['p50']:.2f} ms, "
            f"batched {qps:,.0f} q/s"
        )
        results.append(row)
    return results


# ---------------------------------------------------------------- FAISS


def build_faiss(base: np.ndarray, threads: int):
    import faiss

    faiss.omp_set_num_threads(threads)
    index = faiss.IndexHNSWFlat(DIM, 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 64
    started = time.perf_counter()
    index.add(base)
    return index, time.perf_counter() - started


def run_faiss(index, queries: np.ndarray, truth: np.ndarray, single: int) -> list[dict]:
    import faiss

    faiss.omp_set_num_threads(1)
    results = []
    for ef in EF_SEARCH:
        index.hnsw.efSearch = ef
        started = time.perf_counter()
        _, found = index.search(queries, K)
        qps = len(queries) / (time.perf_counter() - started)
        times = []
        for q in queries[:single]:
            t = time.perf_counter()
            index.search(q[None, :], K)
            times.append((time.perf_counter() - t) * 1e3)
        results.append(
            dict(
                method="faiss",
                ef=ef,
                recall=recall(found, truth),
                p50=np.percentile(times, 50),
                p90=np.percentile(times, 90),
                single_qps=len(times) / (sum(times) / 1e3),
                qps=qps,
            )
        )
        say(f"faiss ef_search={ef}: recall@10 {results[-1]['recall']:.4f}, {qps:,.0f} q/s")
    return results


# ---------------------------------------------------------------- report


def report(args, rows: list[dict], builds: dict, exact_qps: float) -> None:
    faiss_qps = {r["ef"]: r["qps"] for r in rows if r["method"] == "faiss"}
    print(f"\n$ {shlex.join([sys.executable, *sys.argv])}")
    print(
        f"n = {args.n:,} x {DIM} halfvec, {args.queries:,} queries, k = {K}, "
        f"single-query timings over {args.single}, batches of {args.batch}"
    )
    for name, seconds in builds.items():
        print(f"{name}: {seconds:,.1f} s ({args.n / seconds:,.0f} vectors/s)")
    head = f"{'method':<9}{'ef':>5}{'recall@10':>11}{'p50 ms':>9}{'p90 ms':>9}"
    print(head + f"{'1-by-1 q/s':>12}{'batch q/s':>11}{'pg/faiss':>10}")
    for r in rows:
        ratio = f"{r['qps'] / faiss_qps[r['ef']]:.2f}" if r["method"] == "pgvector" else ""
        print(
            f"{r['method']:<9}{r['ef']:>5}{r['recall']:>11.4f}{r['p50']:>9.2f}{r['p90']:>9.2f}"
            f"{r['single_qps']:>12,.0f}{r['qps']:>11,.0f}{ratio:>10}"
        )
    print(f"{'numpy':<9}{'-':>5}{1.0:>11.4f}{'':>9}{'':>9}{'':>12}{exact_qps:>11,.0f}")
    targets(rows, faiss_qps)


def targets(rows: list[dict], faiss_qps: dict) -> None:
    pg = [r for r in rows if r["method"] == "pgvector"]
    print("targets (pgvector):")
    for r in pg:
        ratio = r["qps"] / faiss_qps[r["ef"]]
        print(
            f"  ef_search={r['ef']}: recall@10 >= 0.98: {_yes(r['recall'] >= 0.98)}; "
            f"p50 <= 3 ms: {_yes(r['p50'] <= 3)}; "
            f"batched >= 0.5x FAISS q/s: {_yes(ratio >= 0.5)} ({ratio:.2f})"
        )


def _yes(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> None:
    args = parse_args()
    say(f"making {args.n:,} + {args.queries:,} vectors")
    base, queries = make_vectors(args.n, args.seed), make_vectors(args.queries, args.seed + 1)
    truth, exact_qps = exact_topk(base, queries)
    say(f"exact numpy: {exact_qps:,.1f} q/s")
    with embedded_server(args.home, args.keep) as settings:
        with connect(settings) as conn:
            say("loading vectors")
            record, ids = load_pg(conn, base)
            builds = {"pgvector HNSW build": build_pg_index(conn, record, args.maintenance_workers)}
            say(f"pgvector index built in {builds['pgvector HNSW build']:.1f} s")
            rows = run_pg(conn, record, ids, queries, truth, args)
        index, builds["faiss HNSW build"] = build_faiss(base, args.faiss_build_threads)
        say(f"faiss index built in {builds['faiss HNSW build']:.1f} s")
        rows += run_faiss(index, queries, truth, args.single)
        report(args, rows, builds, exact_qps)


if __name__ == "__main__":
    main()
