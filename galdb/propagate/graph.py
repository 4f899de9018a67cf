"""The kNN graph of a model's embeddings, built with pgvector and kept in the database.

``galdb.knn_graphs`` has one row per graph (model, k, ef_search, the number of embeddings
it covers, building/ready); ``galdb.knn_neighbours`` one row per galaxy with its ``k``
nearest other galaxies, nearest first, and their cosine similarities. Building runs the
HNSW query for a page of galaxies inside PostgreSQL (no vector leaves the server) and
commits page by page, so an interrupted build resumes where it stopped; several workers
take disjoint residue classes of galaxy_id. A ready graph is reused until the model's
embeddings change (their count differs); then a new one is built and replaces it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import psycopg

from galdb.db.binary_copy import read_fixed
from galdb.lvm.registry import ModelRecord, ensure_index
from galdb.lvm.vectors import count_embeddings

PAGE = 500


@dataclass(frozen=True)
class Graph:
    graph_id: int
    model_id: int
    k: int
    n_embeddings: int
    reused: bool


def neighbours_sql(record: ModelRecord, k: int) -> str:
    """Insert the k nearest neighbours of the next page of galaxies of worker ``w`` of ``W``.

    Parameters: graph, after, workers, worker, page. The HNSW scan asks for k+1 rows and
    drops the galaxy itself.
    """
    vec = f"halfvec({record.embedding_dim})"
    table = f"galdb.{record.partition}"
    return (
        "INSERT INTO galdb.knn_neighbours (graph_id, galaxy_id, neighbour_ids, similarities) "
        "SELECT %(graph)s, q.galaxy_id, n.ids, n.sims FROM ("
        f"  SELECT e.galaxy_id, e.embedding FROM {table} e "
        "   WHERE e.galaxy_id > %(after)s AND e.galaxy_id %% %(workers)s = %(worker)s "
        "   AND NOT EXISTS (SELECT 1 FROM galdb.knn_neighbours d "
        "                   WHERE d.graph_id = %(graph)s AND d.galaxy_id = e.galaxy_id) "
        "   ORDER BY e.galaxy_id LIMIT %(page)s) q "
        "CROSS JOIN LATERAL ("
        f"  SELECT (array_agg(s.galaxy_id ORDER BY s.d) FILTER (WHERE s.galaxy_id <> q.galaxy_id))"
        f"[1:{k}] AS ids, (array_agg((1 - s.d)::real ORDER BY s.d) FILTER "
        f"(WHERE s.galaxy_id <> q.galaxy_id))[1:{k}] AS sims FROM ("
        f"    SELECT c.galaxy_id, c.embedding::{vec} <=> q.embedding::{vec} AS d FROM {table} c "
        f"    ORDER BY c.embedding::{vec} <=> q.embedding::{vec} LIMIT {k + 1}) s) n "
        "WHERE n.ids IS NOT NULL RETURNING galaxy_id"
    )


def ensure_graph(
    conn: psycopg.Connection,
    url: str,
    record: ModelRecord,
    k: int,
    *,
    ef_search: int | None = None,
    workers: int = 1,
    rebuild: bool = False,
    progress=None,
) -> Graph:
    """The model's ready k-graph if it still covers every embedding, else build (or resume
    building) one. ``url`` lets workers open their own connections."""
    ef_search = ef_search or max(40, 2 * (k + 1))
    n = count_embeddings(conn, record)
    ready = conn.execute(
        "SELECT graph_id, n_embeddings FROM galdb.knn_graphs WHERE model_id = %s AND k = %s "
        "AND status = 'ready' ORDER BY graph_id DESC LIMIT 1",
        (record.model_id, k),
    ).fetchone()
    if ready and ready[1] == n and not rebuild:
        return Graph(ready[0], record.model_id, k, n, reused=True)
    building = conn.execute(
        "SELECT graph_id FROM galdb.knn_graphs WHERE model_id = %s AND k = %s "
        "AND status = 'building' ORDER BY graph_id DESC LIMIT 1",
        (record.model_id, k),
    ).fetchone()
    if building and not rebuild:
        graph_id = building[0]
    else:
        graph_id = conn.execute(
            "INSERT INTO galdb.knn_graphs (model_id, k, ef_search, n_embeddings) "
            "VALUES (%s, %s, %s, %s) RETURNING graph_id",
            (record.model_id, k, ef_search, n),
        ).fetchone()[0]
    ensure_index(conn, record)
    conn.commit()
    done = conn.execute(
        "SELECT count(*) FROM galdb.knn_neighbours WHERE graph_id = %s", (graph_id,)
    ).fetchone()[0]
    if progress is not None:
        progress.start(n, f"kNN graph k={k} of model {record.model_id}")
        progress.advance(done)
    query = neighbours_sql(record, k)
    with ThreadPoolExecutor(workers) as pool:
        for future in [
            pool.submit(_build_part, url, query, graph_id, ef_search, workers, w, progress)
            for w in range(workers)
        ]:
            future.result()
    with conn.transaction():
        conn.execute(
            "UPDATE galdb.knn_graphs SET status = 'ready', built_at = now(), n_embeddings = "
            "(SELECT count(*) FROM galdb.knn_neighbours WHERE graph_id = %s) WHERE graph_id = %s",
            (graph_id, graph_id),
        )
        # older graphs of the same model and k are superseded
        conn.execute(
            "DELETE FROM galdb.knn_graphs WHERE model_id = %s AND k = %s AND graph_id <> %s",
            (record.model_id, k, graph_id),
        )
    conn.commit()
    return Graph(graph_id, record.model_id, k, count_embeddings(conn, record), reused=False)


def _build_part(url, query, graph_id, ef_search, workers, worker, progress) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(f"SET hnsw.ef_search = {int(ef_search)}")
        conn.execute("SET hnsw.iterative_scan = off")
        conn.commit()
        after = -1
        params = {"graph": graph_id, "workers": workers, "worker": worker, "page": PAGE}
        while rows := conn.execute(query, params | {"after": after}).fetchall():
            conn.commit()
            after = max(r[0] for r in rows)
            if progress is not None:
                progress.advance(len(rows))


@dataclass
class Edges:
    """The graph as arrays: node ids (sorted) and directed edges as node indices."""

    node_ids: np.ndarray
    sources: np.ndarray
    targets: np.ndarray
    similarities: np.ndarray


def read_edges(conn: psycopg.Connection, graph_id: int, page: int = 100_000) -> Edges:
    """Every edge of a graph, read in keyset pages with binary COPY."""
    fields = [("galaxy_id", ">i8"), ("neighbour_id", ">i8"), ("similarity", ">f4")]
    query = (
        "SELECT galaxy_id, unnest(neighbour_ids), unnest(similarities) FROM ("
        "SELECT * FROM galdb.knn_neighbours WHERE graph_id = %s AND galaxy_id > %s "
        f"ORDER BY galaxy_id LIMIT {int(page)}) p"
    )
    chunks, after = [], -1
    while len(rows := read_fixed(conn, query, (graph_id, after), fields)):
        chunks.append(
            (
                rows["galaxy_id"].astype(np.int64),
                rows["neighbour_id"].astype(np.int64),
                rows["similarity"].astype(np.float32),
            )
        )
        after = int(chunks[-1][0][-1])
    if not chunks:
        empty = np.empty(0, np.int64)
        return Edges(empty, empty, empty, np.empty(0, np.float32))
    src, dst, sim = (np.concatenate(c) for c in zip(*chunks, strict=True))
    node_ids = np.unique(src)
    target, known = locate(node_ids, dst)  # a neighbour whose own row is gone is dropped
    return Edges(node_ids, np.searchsorted(node_ids, src[known]), target[known], sim[known])


def locate(node_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each id in the sorted ``node_ids``, and whether it is there at all."""
    if not len(node_ids):
        return np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
    at = np.searchsorted(node_ids, ids).clip(0, len(node_ids) - 1)
    return at, node_ids[at] == ids
