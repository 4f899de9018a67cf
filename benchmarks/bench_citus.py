"""Citus benchmark: galdb on a local Citus cluster against galdb on one server, same data.

What is measured, in one run, on the same synthetic catalog (``--n`` galaxies at uniform
random positions on the sphere, each with a clustered unit vector of ``--dim`` dimensions,
:func:`galdb.datasets.vectors.clustered_vectors`), loaded once into galdb's embedded server
(single node, its usual tuning) and once into a Citus cluster started from the same binaries
(a coordinator and ``--workers`` workers on this machine, each with a share of the same
memory settings; ``galdb db init --citus``):

* ingest: catalog rows + vectors stored through galdb's own paths (COPY into
  ``galdb.galaxies``, :func:`galdb.lvm.embed.write_vectors`), rows/s; HNSW build seconds
  (:func:`galdb.lvm.registry.ensure_index`, m=16, ef_construction=64);
* kNN: ``--queries`` held-out vectors, one statement each (``ORDER BY distance LIMIT 10``
  with the vector as a parameter: on Citus pushed down to every shard's HNSW index and
  merged), recall@10 against exact numpy top-10, p50/p95 ms, at each ef_search;
* cone search: ``galdb.cone_search`` at random centres, p50/p95 ms, and whether both
  servers return the same galaxies.

``--sizes N`` instead measures the bytes per galaxy galdb stores for N galaxies with
``--dim``-d vectors on one server (heap and indexes of ``galaxies``, the vectors' heap, the
HNSW index): the figures the README's sizing note scales to a survey.

The cluster's nodes share this machine's CPUs, so it cannot show a speed-up: the Citus/single
ratios are the per-query overhead of distribution (planning, one connection per shard
group, merging), not what separate machines would give. Needs Citus built
(``python scripts/build_citus.py``).

    python benchmarks/bench_citus.py --n 300000 --dim 128
    python benchmarks/bench_citus.py --sizes 20000 --dim 768
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import (
    Figures,
    citus_server,
    command_line,
    log,
    machine,
    percentile_ms,
    print_table,
    require_citus,
)
from pgvector import HalfVector
from pgvector.psycopg import register_vector

from galdb.datasets.vectors import clustered_vectors, store_vectors
from galdb.db import admin, server
from galdb.db.connect import connect
from galdb.db.settings import Settings
from galdb.lvm import registry

K = 10
EF_SEARCH = (40, 100)
CONE_RADII = (0.5, 2.0)  # degrees: ~7 and ~110 galaxies per cone at 300k on the sphere


def data(n: int, dim: int, queries: int, seed: int):
    vectors, _ = clustered_vectors(n + queries, dim, 200, spread=0.8, seed=seed)
    vectors = vectors.astype(np.float16).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rng = np.random.default_rng(seed + 1)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    return vectors[:n], vectors[n:], np.column_stack([ra, dec])


def exact_top(base: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Row indices of the exact top-K by cosine distance, per query."""
    top = np.empty((len(queries), K), np.int64)
    for start in range(0, len(queries), 100):
        sims = queries[start : start + 100] @ base.T
        part = np.argpartition(-sims, K, axis=1)[:, :K]
        order = np.argsort(-np.take_along_axis(sims, part, 1), axis=1)
        top[start : start + 100] = np.take_along_axis(part, order, 1)
    return top


def run(settings: Settings, label: str, base, queries, positions, truth, cones) -> dict:
    out: dict = {}
    with connect(settings) as conn:
        register_vector(conn)
        t = time.perf_counter()
        record, ids = store_vectors(
            conn, base, f"bench-{label}", f"synthetic:bench-{label}", positions=positions
        )
        conn.commit()
        out["ingest_s"] = time.perf_counter() - t
        log(f"{label}: {len(base):,} rows + vectors stored in {out['ingest_s']:.1f} s")
        t = time.perf_counter()
        registry.ensure_index(conn, record)
        out["hnsw_s"] = time.perf_counter() - t
        log(f"{label}: HNSW built in {out['hnsw_s']:.1f} s")
        conn.execute(f"ANALYZE galdb.{record.partition}")
        conn.commit()
        knn = (
            f"SELECT galaxy_id FROM galdb.{record.partition} "
            f"ORDER BY embedding::halfvec({base.shape[1]}) <=> %s LIMIT {K}"
        )
        row_of = {int(g): i for i, g in enumerate(ids)}
        for ef in EF_SEARCH:
            times, hits = [], 0
            for q, want in zip(queries, truth, strict=True):
                t = time.perf_counter()
                with conn.transaction():
                    conn.execute(f"SET LOCAL hnsw.ef_search = {ef}")
                    got = conn.execute(knn, (HalfVector(q),), prepare=True).fetchall()
                times.append(time.perf_counter() - t)
                hits += len({row_of[r[0]] for r in got} & set(want.tolist()))
            out[f"knn{ef}"] = (
                hits / truth.size,
                percentile_ms(times, 50),
                percentile_ms(times, 95),
            )
            log(f"{label}: ef_search={ef}: recall@10 {hits / truth.size:.4f}")
        for radius in CONE_RADII:
            times, found = [], []
            for ra, dec in cones:
                t = time.perf_counter()
                rows = conn.execute(
                    "SELECT galaxy_id FROM galdb.cone_search(%s, %s, %s)", (ra, dec, radius)
                ).fetchall()
                times.append(time.perf_counter() - t)
                found.append(sorted(row_of[r[0]] for r in rows))
            conn.rollback()
            out[f"cone{radius}"] = (percentile_ms(times, 50), percentile_ms(times, 95), found)
    return out


def sizes(n: int, dim: int, seed: int) -> None:
    """Bytes per galaxy on one server (see the module docstring)."""
    base, _, positions = data(n, dim, 0, seed)
    root = Path(tempfile.mkdtemp(prefix="galdb-bench-sizes-"))
    try:
        single = Settings(home=root)
        admin.init(single)
        with connect(single) as conn:
            record, _ = store_vectors(conn, base, "sizes", "synthetic:sizes", positions=positions)
            registry.ensure_index(conn, record)
            q = "SELECT pg_relation_size(%s), pg_indexes_size(%s)"
            g = conn.execute(q, ("galdb.galaxies", "galdb.galaxies")).fetchone()
            part = f"galdb.{record.partition}"
            e = conn.execute(q, (part, part)).fetchone()
            hnsw = conn.execute(
                "SELECT pg_relation_size(%s)", (f"galdb.{record.index}",)
            ).fetchone()[0]
        server.stop(single.pgdata)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_table(
        f"bytes per galaxy, n={n:,}, dim={dim} halfvec (one server)",
        ["", "bytes/galaxy"],
        [
            ["galaxies heap (ra, dec, ids; no props)", g[0] / n],
            ["galaxies indexes (pkey, zone/ra, release/source)", g[1] / n],
            ["vectors heap (embeddings partition)", e[0] / n],
            ["HNSW index (m=16, ef_construction=64)", hnsw / n],
            ["other indexes of the vectors (pkey)", (e[1] - hnsw) / n],
        ],
    )
    print(f"\n{command_line()}\n{machine()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=300_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--cones", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shards", type=int, default=32, help="galdb db init --citus --shards")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", type=int, help="only measure bytes per galaxy at this n")
    parser.add_argument("--json", type=Path, help="also write the headline figures here")
    args = parser.parse_args()
    if args.sizes:
        sizes(args.sizes, args.dim, args.seed)
        return
    require_citus()
    log(f"machine: {machine()}")
    base, queries, positions = data(args.n, args.dim, args.queries, args.seed)
    truth = exact_top(base, queries)
    rng = np.random.default_rng(args.seed + 2)
    cones = np.column_stack(
        [rng.uniform(0, 360, args.cones), np.degrees(np.arcsin(rng.uniform(-1, 1, args.cones)))]
    )
    root = Path(tempfile.mkdtemp(prefix="galdb-bench-citus-"))
    results = {}
    try:
        single = Settings(home=root / "single")
        admin.init(single)
        results["single"] = run(single, "single", base, queries, positions, truth, cones)
        server.stop(single.pgdata)
        with citus_server(root, args.workers, args.shards) as citus:
            results["citus"] = run(citus, "citus", base, queries, positions, truth, cones)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    s, c = results["single"], results["citus"]
    rows = [
        ["ingest rows/s", args.n / s["ingest_s"], args.n / c["ingest_s"]],
        ["HNSW build s", s["hnsw_s"], c["hnsw_s"]],
    ]
    for ef in EF_SEARCH:
        rows.append([f"kNN ef={ef} recall@10", s[f"knn{ef}"][0], c[f"knn{ef}"][0]])
        rows.append([f"kNN ef={ef} p50 ms", s[f"knn{ef}"][1], c[f"knn{ef}"][1]])
        rows.append([f"kNN ef={ef} p95 ms", s[f"knn{ef}"][2], c[f"knn{ef}"][2]])
    for radius in CONE_RADII:
        same = s[f"cone{radius}"][2] == c[f"cone{radius}"][2]
        mean = np.mean([len(f) for f in s[f"cone{radius}"][2]])
        rows.append(
            [
                f"cone {radius} deg p50 ms ({mean:.0f} found)",
                s[f"cone{radius}"][0],
                c[f"cone{radius}"][0],
            ]
        )
        rows.append([f"cone {radius} deg p95 ms", s[f"cone{radius}"][1], c[f"cone{radius}"][1]])
        rows.append([f"cone {radius} deg same galaxies", "yes", "yes" if same else "NO"])
    table = [
        [r[0], r[1], r[2], r[2] / r[1] if isinstance(r[1], float) and r[1] else ""] for r in rows
    ]
    print_table(
        f"galdb single node vs Citus ({args.workers} workers on this machine, {args.shards} "
        f"shards), n={args.n:,}, "
        f"dim={args.dim}, {args.queries} kNN queries, {args.cones} cones",
        ["", "single", "citus", "citus/single"],
        table,
    )
    print(f"\n{command_line()}\n{machine()}")
    figures = Figures("bench_citus.py")
    figures.add(
        f"Citus ingest, {args.n:,} galaxies",
        args.n / c["ingest_s"],
        "rows/s",
        reference=args.n / s["ingest_s"],
        reference_name="one server, same data",
    )
    latencies = [
        (
            f"kNN ef={ef}",
            f"knn{ef}",
            1,
            f"recall@10 {c[f'knn{ef}'][0]:.3f} (one server {s[f'knn{ef}'][0]:.3f})",
        )
        for ef in EF_SEARCH
    ] + [
        (
            f"cone {r} deg",
            f"cone{r}",
            0,
            "same galaxies" if s[f"cone{r}"][2] == c[f"cone{r}"][2] else "DIFFERENT galaxies",
        )
        for r in CONE_RADII
    ]
    for label, key, p50, note in latencies:
        figures.add(
            f"Citus {label} p50",
            c[key][p50],
            "ms",
            better="lower",
            reference=s[key][p50],
            reference_name="one server",
            note=note,
        )
    figures.write(args.json)


if __name__ == "__main__":
    main()
