"""Many query vectors at once: each one's k nearest galaxies, over several connections.

One search statement answers one query vector (``galdb.nearest_vectors`` runs one HNSW scan
per vector, which Citus pushes down to every shard), so a single connection keeps one server
backend, i.e. one CPU core, busy. :func:`nearest_many` sends the query vectors in batches
(``batch`` vectors per statement, which saves the round trips) and spreads the batches over
``connections`` connections of their own, each a read-only transaction per batch, so that as
many backends search at once. Results come back in query order as arrays.

>>> ids, distances = nearest_many(url, record, vectors, k=10, connections=4)  # doctest: +SKIP
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import psycopg
from pgvector import HalfVector
from pgvector.psycopg import register_vector

from galdb.lvm.registry import ModelRecord

NEAREST_SQL = (
    "SELECT query_index, galaxy_id, distance "
    "FROM galdb.nearest_vectors(%s::halfvec[], %s, %s) ORDER BY query_index, distance"
)


def nearest_many(
    url: str,
    record: ModelRecord,
    queries: np.ndarray,
    k: int = 10,
    *,
    connections: int = 1,
    batch: int = 100,
    ef_search: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest galaxies of each row of ``queries`` (cosine distance, the model's
    HNSW index), searched by ``connections`` connections in parallel.

    Returns ``(ids, distances)``, both ``(len(queries), k)`` and nearest first; a query with
    fewer than ``k`` neighbours is padded with id -1 and distance inf. Opens its own
    connections (to ``url``) and only reads, so there is nothing to commit.
    """
    if connections < 1 or batch < 1:
        raise ValueError(f"connections and batch must be >= 1 (got {connections}, {batch})")
    n = len(queries)
    ids = np.full((n, k), -1, np.int64)
    distances = np.full((n, k), np.inf, np.float64)
    starts = list(range(0, n, batch))
    parts = [starts[w::connections] for w in range(connections)]

    def work(part: list[int]) -> None:
        with psycopg.connect(url) as conn:
            register_vector(conn)
            for start in part:
                chunk = queries[start : start + batch]
                with conn.transaction():
                    if ef_search:  # SET LOCAL: also reaches the shards on Citus
                        conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
                    rows = conn.execute(
                        NEAREST_SQL,
                        ([HalfVector(q) for q in chunk], k, str(record.model_id)),
                        binary=True,
                    ).fetchall()
                _fill(ids, distances, start, rows)

    with ThreadPoolExecutor(connections) as pool:
        for future in [pool.submit(work, p) for p in parts if p]:
            future.result()
    return ids, distances


def _fill(ids: np.ndarray, distances: np.ndarray, start: int, rows: list[tuple]) -> None:
    """Write one batch's ``(query_index, galaxy_id, distance)`` rows (1-based query index,
    ordered by query then distance) into the result arrays."""
    column, previous = 0, None
    for query_index, galaxy_id, distance in rows:
        column = column + 1 if query_index == previous else 0
        previous = query_index
        ids[start + query_index - 1, column] = galaxy_id
        distances[start + query_index - 1, column] = distance
