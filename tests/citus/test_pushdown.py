"""A distributed halfvec table on the real cluster: kNN runs on each shard's HNSW index."""

from __future__ import annotations

import numpy as np
import psycopg
from pgvector import HalfVector
from pgvector.psycopg import register_vector

DIM, N, SHARDS, K = 16, 4000, 4, 10


def _explain(conn, query: str, params: tuple) -> str:
    # with the values inlined: Citus cannot EXPLAIN a statement with bound parameters
    with psycopg.ClientCursor(conn) as cur:
        return "\n".join(r[0] for r in cur.execute("EXPLAIN " + query, params).fetchall())


def test_knn_is_pushed_down_to_every_shard_and_equals_exact_single_node(cluster):
    conn = cluster
    register_vector(conn)
    conn.execute("DROP SCHEMA IF EXISTS pushdown CASCADE")
    conn.execute("CREATE SCHEMA pushdown")
    conn.execute(f"CREATE TABLE pushdown.dist (id bigint PRIMARY KEY, e halfvec({DIM}) NOT NULL)")
    conn.execute(f"CREATE TABLE pushdown.single (id bigint PRIMARY KEY, e halfvec({DIM}))")
    conn.execute(
        "SELECT create_distributed_table('pushdown.dist', 'id', shard_count => %s)", (SHARDS,)
    )
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((N, DIM)).astype(np.float16)
    for table in ("dist", "single"):
        with conn.cursor() as cur, cur.copy(f"COPY pushdown.{table} (id, e) FROM STDIN") as cp:
            for i, v in enumerate(vectors):
                cp.write_row((i, HalfVector(v)))
    conn.execute("CREATE INDEX dist_hnsw ON pushdown.dist USING hnsw (e halfvec_cosine_ops)")
    placements = conn.execute(
        "SELECT count(DISTINCT nodeport) FROM citus_shards "
        "WHERE table_name = 'pushdown.dist'::regclass"
    ).fetchone()[0]
    assert placements == 2  # the shards live on both workers

    knn = "SELECT id, (e <=> %s)::float8 FROM pushdown.dist ORDER BY e <=> %s LIMIT %s"
    exact = "SELECT id, (e <=> %s)::float8 FROM pushdown.single ORDER BY (e <=> %s) + 0 LIMIT %s"
    conn.execute("SET citus.explain_all_tasks = on")
    for q in rng.standard_normal((5, DIM)).astype(np.float16):
        params = (HalfVector(q), HalfVector(q), K)
        plan = _explain(conn, knn, params)
        assert f"Task Count: {SHARDS}" in plan
        assert plan.count("Index Scan using dist_hnsw") == SHARDS, plan
        assert plan.count("Limit") >= SHARDS + 1  # LIMIT per shard, then on the merged rows
        with conn.transaction():
            conn.execute("SET LOCAL hnsw.ef_search = 400")
            got = conn.execute(knn, params).fetchall()
        want = conn.execute(exact, params).fetchall()
        assert [r[0] for r in got] == [r[0] for r in want]
        np.testing.assert_allclose([r[1] for r in got], [r[1] for r in want], rtol=1e-6)
    conn.execute("DROP SCHEMA pushdown CASCADE")
