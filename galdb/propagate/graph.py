"""The kNN graph of a model's embeddings, kept in the database.

``galdb.knn_graphs`` has one row per graph (model, k, ef_search, the number of embeddings
it covers, building/ready); ``galdb.knn_neighbours`` one row per galaxy with its ``k``
nearest other galaxies, nearest first, and their cosine similarities.

A full build takes one of three ways (``method``, default ``"pgvector"``; ``"auto"`` picks
``"faiss"`` when FAISS is installed and its memory estimate is within ``memory_limit``, by
default half the available memory, else ``"pgvector"``). Blocks are fast but, at a fixed
probe, their recall falls as n grows (0.98 at 25k, 0.93 at 100k, 0.81 at 1M x 512-d), so
only an explicit ``"blocks"`` uses them:

- ``"faiss"`` (needs ``faiss-cpu``): as ``"blocks"`` below, except that the neighbours of
  the projected vectors come from an HNSW graph FAISS builds in memory
  (:mod:`galdb.propagate.hnsw_search`), whose recall holds as n grows.
- ``"blocks"``: the vectors are read once (binary COPY in keyset pages) and held as
  float16, the graph is computed by clustered blocks of matrix products
  (:mod:`galdb.propagate.blocks`) and written back by binary COPY in one transaction (with
  the removal of any rows an interrupted build left). No per-galaxy query: on 100k x 512-d
  embedding-like vectors, 2 busy CPUs, 3.1x faster than the HNSW queries (49 s against
  152 s), at a lower recall@15 against exact kNN (0.934 against 0.981;
  ``benchmarks/bench_propagate.py``); its cost grows linearly with n (plus the k-means
  assignment), the queries' faster: 1M took 10 min (``bench_graph_build.py``) against
  34-63 min extrapolated for the queries, at recall 0.81 (1M on a quiet machine: 130 s).
  Holds the vectors in memory. An interrupted build starts over.
- ``"pgvector"``: the HNSW query for a page of galaxies runs inside PostgreSQL (no vector
  leaves the server) and commits page by page, so an interrupted build resumes where it
  stopped; several workers take disjoint residue classes of galaxy_id. On Citus
  (:mod:`galdb.db.citus`) a page's vectors go through ``galdb.nearest_vectors`` instead (one
  kNN statement per galaxy, pushed down to every shard). Memory stays bounded by a page
  whatever the size of the table.

A ready graph is kept up to date with the model's embeddings (:func:`ensure_graph`):

- same count: reused as it is;
- embeddings only added (more embeddings than the graph covers, and every galaxy with a
  row still embedded): **extended** in place. Each page of new galaxies gets its rows from
  the HNSW query of a build (at the graph's ef_search or more), asking for ``REACH * k``
  neighbours instead of k: the k nearest become the row, and, in the same transaction,
  every galaxy of the graph among the ``REACH * k`` takes the new galaxy in if it is closer
  than that galaxy's k-th neighbour (whose k-th is dropped). This is the reverse-candidate
  approximation (an old galaxy that gains a new neighbour ``g`` is among ``g``'s own
  nearest), widened because kNN is far from symmetric in many dimensions. A page's rows
  and its updates commit together, so a galaxy has a row exactly when its updates are
  done: an interrupted extension continues with the galaxies still lacking a row, and
  re-running it changes nothing. ``n_embeddings`` is set at the end. On Citus the page's
  queries go through ``galdb.nearest_vectors`` and the old rows are locked one statement
  each (Citus refuses a multi-shard ``FOR UPDATE``); the update itself is the same;
- anything else (embeddings removed, galaxies missing from the partition): a new graph is
  built and replaces the old one.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import psutil
import psycopg

from galdb.db.binary_copy import read_fixed
from galdb.db.citus import is_galdb_distributed
from galdb.errors import GaldbError
from galdb.lvm.registry import ModelRecord, ensure_index
from galdb.lvm.vectors import count_embeddings, iter_embeddings
from galdb.propagate import blocks, hnsw_search
from galdb.propagate.graph_rows import write_rows

PAGE = 500
# Extending costs about 4-8x a build's query per new galaxy (each asks for ~10k neighbours, to
# find the old galaxies it enters), so past a share of new galaxies a rebuild is cheaper.
# Measured (benchmarks/bench_graph_append.py, bench_pipeline.py, 2 CPUs): 10k added to 300k
# (3%) extended in 15 s against a 118 s rebuild; 20k added to 60k (25%) took 37 s against 19 s.
EXTEND_UP_TO = 0.10
# An extension asks the HNSW index for REACH * k neighbours of each new galaxy: its row keeps
# the k nearest, and all of them are the old rows it may enter. With reach k alone (the
# textbook reverse-candidate rule) only ~40 % of the old rows a new galaxy belongs in are
# found on clustered 16-512-d vectors, because kNN is far from symmetric there; 10 k finds
# 95-99 % (measured with exact kNN). hnsw.ef_search cannot exceed 1000.
REACH = 10
MAX_REACH = 999


def in_memory_limit() -> int:
    """What "auto" lets an in-memory build hold: half the memory available now (1M x 512-d
    at k=15 needs about 3.7 GB with FAISS)."""
    return psutil.virtual_memory().available // 2


Method = Literal["auto", "blocks", "faiss", "pgvector"]


@dataclass(frozen=True)
class Graph:
    """A ready kNN graph, and what :func:`ensure_graph` did to get it.

    ``mode`` is ``"reused"`` (it already covered every embedding), ``"extended"`` (rows were
    added for new embeddings and old rows updated) or ``"built"`` (built from scratch, or an
    interrupted build resumed).
    """

    graph_id: int
    model_id: int
    k: int
    n_embeddings: int
    mode: Literal["reused", "extended", "built"]

    @property
    def reused(self) -> bool:
        """Whether the graph was used as it was found."""
        return self.mode == "reused"


def _page_sql(record: ModelRecord) -> str:
    """The next page of galaxies of worker ``w`` of ``W`` that have no row in the graph.

    Parameters: graph, after, workers, worker, page.
    """
    return (
        f"SELECT e.galaxy_id, e.embedding FROM galdb.{record.partition} e "
        f"WHERE e.model_id = {int(record.model_id)} AND e.galaxy_id > %(after)s "
        "AND e.galaxy_id %% %(workers)s = %(worker)s "
        "AND NOT EXISTS (SELECT 1 FROM galdb.knn_neighbours d "
        "                WHERE d.graph_id = %(graph)s AND d.galaxy_id = e.galaxy_id) "
        "ORDER BY e.galaxy_id LIMIT %(page)s"
    )


def _nearest_sql(record: ModelRecord, limit: int) -> str:
    """A LATERAL subquery: ``ids`` and ``sims`` of the ``limit`` nearest other galaxies of
    ``q`` (nearest first). The HNSW scan asks for limit+1 rows and drops ``q`` itself."""
    vec = f"halfvec({record.embedding_dim})"
    table = f"galdb.{record.partition}"
    return (
        f"SELECT (array_agg(s.galaxy_id ORDER BY s.d) FILTER (WHERE s.galaxy_id <> q.galaxy_id))"
        f"[1:{limit}] AS ids, (array_agg((1 - s.d)::real ORDER BY s.d) FILTER "
        f"(WHERE s.galaxy_id <> q.galaxy_id))[1:{limit}] AS sims FROM ("
        f"  SELECT c.galaxy_id, c.embedding::{vec} <=> q.embedding::{vec} AS d FROM {table} c "
        f"  ORDER BY c.embedding::{vec} <=> q.embedding::{vec} LIMIT {limit + 1}) s"
    )


def neighbours_sql(record: ModelRecord, k: int) -> str:
    """Insert the k nearest neighbours of the next page of galaxies of worker ``w`` of ``W``
    that have no row in the graph; return their ids.

    Parameters: graph, after, workers, worker, page.
    """
    return (
        "INSERT INTO galdb.knn_neighbours (graph_id, galaxy_id, neighbour_ids, similarities) "
        f"SELECT %(graph)s, q.galaxy_id, n.ids, n.sims FROM ({_page_sql(record)}) q "
        f"CROSS JOIN LATERAL ({_nearest_sql(record, k)}) n "
        "WHERE n.ids IS NOT NULL RETURNING galaxy_id"
    )


def extend_page_sql(record: ModelRecord, k: int, reach: int) -> str:
    """Like :func:`neighbours_sql` for an extension: one HNSW query per new galaxy asks for
    its ``reach`` (>= k) nearest; the k nearest become its row, and all ``reach`` come back
    (id, ids, sims) as the galaxies whose rows it may enter.

    Parameters: graph, after, workers, worker, page.
    """
    return (
        "WITH q AS MATERIALIZED ("
        f"  SELECT q.galaxy_id, n.ids, n.sims FROM ({_page_sql(record)}) q "
        f"  CROSS JOIN LATERAL ({_nearest_sql(record, reach)}) n WHERE n.ids IS NOT NULL), "
        "ins AS (INSERT INTO galdb.knn_neighbours (graph_id, galaxy_id, neighbour_ids, "
        f"  similarities) SELECT %(graph)s, galaxy_id, ids[1:{k}], sims[1:{k}] FROM q) "
        "SELECT galaxy_id, ids, sims FROM q"
    )


def reverse_candidates_sql(record: ModelRecord, reach: int) -> str:
    """The ``reach`` nearest (id, ids, sims) of the galaxies ``%(new)s``, as
    :func:`extend_page_sql` returns them, without writing anything."""
    return (
        f"SELECT q.galaxy_id, n.ids, n.sims FROM galdb.{record.partition} q "
        f"CROSS JOIN LATERAL ({_nearest_sql(record, reach)}) n "
        f"WHERE q.model_id = {int(record.model_id)} AND q.galaxy_id = ANY(%(new)s) "
        "AND n.ids IS NOT NULL"
    )


def _gain_sql(k: int, columns: str = "c.h, c.g, c.s") -> str:
    """``(h, g, s)`` of the candidate triples ``%(h)s, %(g)s, %(s)s`` (new galaxy ``g`` at
    similarity ``s`` of graph row ``h``) where ``g`` should enter ``h``'s list: it is not
    there yet and is closer than ``h``'s k-th neighbour (or ``h`` has fewer than k)."""
    return (
        f"SELECT {columns} FROM unnest(%(h)s::int8[], %(g)s::int8[], %(s)s::real[]) "
        "AS c(h, g, s) JOIN galdb.knn_neighbours t "
        "ON t.graph_id = %(graph)s AND t.galaxy_id = c.h "
        "WHERE c.g <> ALL (t.neighbour_ids) "
        f"AND (cardinality(t.similarities) < {k} OR c.s > t.similarities[{k}])"
    )


def entering_sql(k: int) -> str:
    """The candidate triples ``(row, new galaxy, similarity)`` whose new galaxy should enter
    that graph row (see :func:`_gain_sql`), without locking anything."""
    return _gain_sql(k, "t.galaxy_id, c.g, c.s")


def reverse_lock_sql(k: int) -> str:
    """Lock, in galaxy_id order, the graph rows that candidate triples would enter, and
    return those triples.

    Taking the locks in one order lets several workers update overlapping rows without
    deadlocks. Other workers' commits only make lists closer, so a triple that does not
    qualify now never will; :func:`reverse_update_sql` re-checks the locked ones.
    """
    return entering_sql(k) + " ORDER BY t.galaxy_id FOR UPDATE OF t"


def reverse_update_sql(k: int) -> str:
    """Insert each new galaxy of the (locked) triples into the lists it is closer to than
    their k-th neighbour, in order, keeping the k nearest. Set-based: one statement for a
    page. Parameters: graph, h, g, s."""
    return (
        f"WITH gain AS ({_gain_sql(k)}) "
        "UPDATE galdb.knn_neighbours t SET neighbour_ids = m.ids, similarities = m.sims FROM ("
        f"  SELECT x.h, (array_agg(x.id ORDER BY x.s DESC, x.id))[1:{k}] AS ids, "
        f"  (array_agg(x.s ORDER BY x.s DESC, x.id))[1:{k}] AS sims FROM ("
        "    SELECT o.galaxy_id AS h, u.id, u.s FROM galdb.knn_neighbours o "
        "    CROSS JOIN LATERAL unnest(o.neighbour_ids, o.similarities) AS u(id, s) "
        "    WHERE o.graph_id = %(graph)s AND o.galaxy_id IN (SELECT h FROM gain) "
        "    UNION ALL SELECT h, g, s FROM gain) x "
        "  GROUP BY x.h) m "
        "WHERE t.graph_id = %(graph)s AND t.galaxy_id = m.h"
    )


def enter_rows(
    conn: psycopg.Connection, graph_id: int, k: int, candidates: list[tuple], *, citus: bool = False
) -> int:
    """Put new galaxies into the graph rows they are closer to than those rows' k-th.

    ``candidates`` are ``(g, ids, sims)``: new galaxy ``g`` and the galaxies nearest to it
    with their similarities (what :func:`extend_page_sql` returns). Locks, then updates the
    rows; returns how many rows changed. Does not commit. On Citus (``citus``), which
    refuses a multi-shard ``FOR UPDATE``, the rows are locked one statement each (each goes
    to one shard), still in galaxy_id order.
    """
    h, g, s = [], [], []
    for galaxy, ids, sims in candidates:
        h.extend(ids)
        g.extend([galaxy] * len(ids))
        s.extend(sims)
    if not h:
        return 0
    params = {"graph": graph_id, "h": h, "g": g, "s": s}
    if citus:
        locked = conn.execute(entering_sql(k), params).fetchall()
        with conn.cursor() as cur:
            cur.executemany(
                "SELECT 1 FROM galdb.knn_neighbours WHERE graph_id = %s AND galaxy_id = %s "
                "FOR UPDATE",
                [(graph_id, row) for row in sorted({t[0] for t in locked})],
            )
    else:
        locked = conn.execute(reverse_lock_sql(k), params).fetchall()
    if not locked:
        return 0
    h, g, s = (list(column) for column in zip(*locked, strict=True))
    params = {"graph": graph_id, "h": h, "g": g, "s": s}
    return conn.execute(reverse_update_sql(k), params).rowcount


def ensure_graph(
    conn: psycopg.Connection,
    url: str,
    record: ModelRecord,
    k: int,
    *,
    ef_search: int | None = None,
    workers: int = 1,
    rebuild: bool = False,
    extend_up_to: float = EXTEND_UP_TO,
    method: Method = "pgvector",
    memory_limit: int | None = None,
    progress=None,
) -> Graph:
    """The model's ready k-graph, brought up to date with its embeddings.

    Reused if it covers every embedding; extended if embeddings were only added and the new
    ones are at most ``extend_up_to`` of all (:data:`EXTEND_UP_TO`); else a new graph is
    built (or an interrupted build resumed) and replaces it (see the module docstring).
    ``rebuild`` forces a new build. ``url`` lets workers open their own connections.
    ``method`` chooses how a full build runs (see the module docstring); ``workers`` is the
    number of connections (pgvector) or threads (blocks, faiss).

    Commits: a pgvector build and an extension commit page by page (a page's rows, and for
    an extension the old rows it updates, in one transaction), so an interrupted run resumes
    where it stopped; a blocks or faiss build writes all rows in one transaction. The graph's
    ``n_embeddings`` (and ``ready`` for a build) is set last, in a transaction of its own.
    """
    if method not in get_args(Method):
        raise ValueError(f"method must be one of {', '.join(get_args(Method))}, not {method!r}")
    if method == "faiss" and not hnsw_search.available():
        raise GaldbError(
            "the 'faiss' graph method needs FAISS: pip install 'galdb[faiss]' "
            "(or use --graph-method pgvector)"
        )
    ef_search = ef_search or max(40, 2 * (k + 1))
    n = count_embeddings(conn, record)
    ready = conn.execute(
        "SELECT graph_id, n_embeddings, ef_search FROM galdb.knn_graphs "
        "WHERE model_id = %s AND k = %s AND status = 'ready' ORDER BY graph_id DESC LIMIT 1",
        (record.model_id, k),
    ).fetchone()
    if ready and ready[1] == n and not rebuild:
        return Graph(ready[0], record.model_id, k, n, "reused")
    building = conn.execute(
        "SELECT graph_id FROM galdb.knn_graphs WHERE model_id = %s AND k = %s "
        "AND status = 'building' ORDER BY graph_id DESC LIMIT 1",
        (record.model_id, k),
    ).fetchone()
    added = n - ready[1] if ready else 0
    if ready and not building and not rebuild and 0 < added <= extend_up_to * n:
        if _only_added(conn, record, ready[0]):
            return _extend(conn, url, record, k, ready[0], ready[2], workers, progress)
    if building and not rebuild:
        graph_id = building[0]
    else:
        graph_id = conn.execute(
            "INSERT INTO galdb.knn_graphs (model_id, k, ef_search, n_embeddings) "
            "VALUES (%s, %s, %s, %s) RETURNING graph_id",
            (record.model_id, k, ef_search, n),
        ).fetchone()[0]
    conn.commit()
    if method == "auto":
        limit = in_memory_limit() if memory_limit is None else memory_limit
        fits = hnsw_search.memory_bytes(n, record.embedding_dim, k) <= limit
        method = "faiss" if fits and hnsw_search.available() else "pgvector"
    if method in ("blocks", "faiss"):
        _build_in_memory(conn, record, k, graph_id, n, workers, method, progress)
    else:
        ensure_index(conn, record)
        conn.commit()
        if progress is not None:
            progress.start(n, f"kNN graph k={k} of model {record.model_id}")
            progress.advance(_rows(conn, graph_id))
        _run_pages(url, record, k, graph_id, ef_search, workers, progress, extend=False)
    with conn.transaction():
        # the count is read first: on Citus a reference table's UPDATE may not read a
        # distributed table
        conn.execute(
            "UPDATE galdb.knn_graphs SET status = 'ready', built_at = now(), n_embeddings = %s "
            "WHERE graph_id = %s",
            (_rows(conn, graph_id), graph_id),
        )
        # older graphs of the same model and k are superseded; their rows are deleted here,
        # not by the foreign key's cascade (on Citus the key is dropped: see galdb.db.citus)
        older = (record.model_id, k, graph_id)
        conn.execute(
            "DELETE FROM galdb.knn_neighbours WHERE graph_id IN (SELECT graph_id FROM "
            "galdb.knn_graphs WHERE model_id = %s AND k = %s AND graph_id <> %s)",
            older,
        )
        conn.execute(
            "DELETE FROM galdb.knn_graphs WHERE model_id = %s AND k = %s AND graph_id <> %s",
            older,
        )
    conn.commit()
    return Graph(graph_id, record.model_id, k, count_embeddings(conn, record), "built")


def _build_in_memory(conn, record: ModelRecord, k, graph_id, n, threads, method, progress):
    """Every row of graph ``graph_id`` from the vectors read once, by blocks or by FAISS
    (see :mod:`galdb.propagate.blocks`, :mod:`galdb.propagate.hnsw_search`), replacing any
    rows of an interrupted build; commits."""
    label = f"kNN graph k={k} of model {record.model_id}"
    if progress is not None:
        progress.start(n, f"{label}: reading vectors")
    ids, x = blocks.stack(iter_embeddings(conn, record), n, record.embedding_dim, progress)
    conn.commit()
    if method == "faiss":
        search, steps, how = hnsw_search.knn_hnsw, 2 * len(ids), "HNSW (FAISS)"  # add, look up
    else:
        search, steps, how = blocks.knn_blocks, len(ids), "blocks"
    if progress is not None:
        progress.start(steps, f"{label}: neighbours by {how}")
    found = blocks.knn_graph(x, k, threads=max(1, threads), progress=progress, search=search)
    del x
    neighbour_ids = np.where(found.neighbours >= 0, ids[found.neighbours], -1)
    if progress is not None:
        progress.start(len(ids), f"{label}: writing rows")
    with conn.transaction():
        conn.execute("DELETE FROM galdb.knn_neighbours WHERE graph_id = %s", (graph_id,))
        write_rows(conn, graph_id, ids, neighbour_ids, found.similarities, progress=progress)
    conn.commit()


def only_added_sql(record: ModelRecord) -> str:
    """Count the galaxies with a row in graph ``%s`` that are no longer embedded."""
    return (
        "SELECT count(*) FROM galdb.knn_neighbours d WHERE d.graph_id = %s AND NOT EXISTS "
        f"(SELECT 1 FROM galdb.{record.partition} e "
        f"WHERE e.model_id = {int(record.model_id)} AND e.galaxy_id = d.galaxy_id)"
    )


def _only_added(conn: psycopg.Connection, record: ModelRecord, graph_id: int) -> bool:
    return conn.execute(only_added_sql(record), (graph_id,)).fetchone()[0] == 0


def _rows(conn: psycopg.Connection, graph_id: int) -> int:
    return conn.execute(
        "SELECT count(*) FROM galdb.knn_neighbours WHERE graph_id = %s", (graph_id,)
    ).fetchone()[0]


def _extend(conn, url, record, k, graph_id, ef_search, workers, progress) -> Graph:
    """Rows for the embedded galaxies without one, and the old rows they enter."""
    ensure_index(conn, record)
    conn.commit()
    if progress is not None:
        missing = count_embeddings(conn, record) - _rows(conn, graph_id)
        progress.start(missing, f"extending kNN graph {graph_id} (k={k})")
    _run_pages(url, record, k, graph_id, ef_search, workers, progress, extend=True)
    with conn.transaction():
        conn.execute(
            "UPDATE galdb.knn_graphs SET built_at = now(), n_embeddings = %s WHERE graph_id = %s",
            (_rows(conn, graph_id), graph_id),
        )
    conn.commit()
    return Graph(graph_id, record.model_id, k, count_embeddings(conn, record), "extended")


def _run_pages(url, record, k, graph_id, ef_search, workers, progress, *, extend) -> None:
    with ThreadPoolExecutor(workers) as pool:
        for future in [
            pool.submit(
                _build_part, url, record, k, graph_id, ef_search, workers, w, progress, extend
            )
            for w in range(workers)
        ]:
            future.result()


def _build_part(url, record, k, graph_id, ef_search, workers, worker, progress, extend) -> None:
    """Worker ``worker``'s pages: rows for its galaxies lacking one (and, when ``extend``,
    the old rows they enter), one transaction per page."""
    reach = min(REACH * k, MAX_REACH) if extend else k
    query = extend_page_sql(record, k, reach) if extend else neighbours_sql(record, k)
    with psycopg.connect(url) as conn:
        on_citus = is_galdb_distributed(conn)
        settings = (
            f"SET hnsw.ef_search = {int(max(ef_search, reach + 1))}; SET hnsw.iterative_scan = off"
        )
        conn.execute(settings)
        conn.commit()
        after = -1
        params = {"graph": graph_id, "workers": workers, "worker": worker, "page": PAGE}
        while rows := (
            _citus_page(conn, record, k, reach, params | {"after": after}, settings)
            if on_citus
            else conn.execute(query, params | {"after": after}).fetchall()
        ):
            if extend:
                enter_rows(conn, graph_id, k, rows, citus=on_citus)
            conn.commit()
            after = max(r[0] for r in rows)
            if progress is not None:
                progress.advance(len(rows))


def _citus_page(conn, record: ModelRecord, k: int, reach: int, params: dict, settings: str):
    """On Citus, :func:`neighbours_sql`'s page (``reach`` == k) or :func:`extend_page_sql`'s
    (``reach`` > k): Citus refuses their LATERAL kNN subquery per galaxy, so the page's
    vectors go through ``galdb.nearest_vectors`` (one kNN statement per galaxy, pushed down
    to every shard's HNSW index) and the rows (each galaxy's k nearest) are written with
    COPY. Returns ``(galaxy_id, ids, sims)`` of the page, with the ``reach`` nearest; the
    caller commits."""
    conn.execute(settings.replace("SET ", "SET LOCAL "))  # SET LOCAL reaches the workers
    page = conn.execute(
        f"SELECT p.galaxy_id, p.embedding::text FROM ({_page_sql(record)}) p", params
    ).fetchall()
    if not page:
        return []
    found = conn.execute(
        "SELECT query_index, galaxy_id, distance FROM "
        "galdb.nearest_vectors(%s::text[]::halfvec[], %s, %s)",
        ([r[1] for r in page], reach + 1, str(record.model_id)),
    ).fetchall()
    rows: dict[int, tuple[list[int], list[float]]] = {r[0]: ([], []) for r in page}
    for i, neighbour, distance in sorted(found, key=lambda r: (r[0], r[2])):
        query = page[i - 1][0]
        ids, sims = rows[query]
        if neighbour != query and len(ids) < reach:
            ids.append(neighbour)
            sims.append(1.0 - distance)
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY galdb.knn_neighbours (graph_id, galaxy_id, neighbour_ids, similarities) "
            "FROM STDIN"
        ) as cp,
    ):
        for galaxy, (ids, sims) in rows.items():
            if ids:
                cp.write_row((params["graph"], galaxy, ids[:k], sims[:k]))
    return [(galaxy, ids, sims) for galaxy, (ids, sims) in rows.items()]


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
