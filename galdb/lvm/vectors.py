"""Read a model's embeddings back as numpy arrays, fast enough for millions of rows.

A binary ``COPY`` of ``(galaxy_id bigint, embedding halfvec(d))`` has a fixed row size, so
each chunk is decoded by one numpy ``frombuffer`` instead of a Python call per row. The
table is read in keyset pages: memory stays bounded by ``chunk_rows`` whatever its size.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import psycopg

from galdb.db.binary_copy import read_fixed
from galdb.lvm.registry import ModelRecord


def _fields(dim: int) -> list[tuple[str, object]]:
    # pgvector sends a halfvec as int16 dim, int16 unused, then dim big-endian halfs
    halfvec = np.dtype([("dim", ">i2"), ("unused", ">i2"), ("vector", ">f2", (dim,))])
    return [("galaxy_id", ">i8"), ("embedding", halfvec)]


def iter_embeddings(
    conn: psycopg.Connection,
    record: ModelRecord,
    *,
    where: str = "",
    params: tuple = (),
    chunk_rows: int = 65536,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(galaxy_ids int64 (n,), vectors float32 (n, d))`` chunks, in galaxy_id order.

    Each chunk is its own COPY of a keyset page (``galaxy_id > last``), so the connection
    is free between chunks (a caller may write with it) and a vector added meanwhile is
    read at most once. ``where`` is an SQL condition on ``e`` (the model's partition), e.g.
    ``"e.galaxy_id = ANY(%s)"`` with ``params=(ids,)``.
    """
    condition = f"AND ({where})" if where else ""
    query = (
        f"SELECT e.galaxy_id, e.embedding FROM galdb.{record.partition} e "
        f"WHERE e.galaxy_id > %s {condition} ORDER BY e.galaxy_id LIMIT {int(chunk_rows)}"
    )
    after = np.iinfo(np.int64).min
    while True:
        rows = read_fixed(conn, query, (int(after), *params), _fields(record.embedding_dim))
        if not len(rows):
            return
        ids = rows["galaxy_id"].astype(np.int64)
        yield ids, rows["embedding"]["vector"].astype(np.float32)
        if len(rows) < chunk_rows:
            return
        after = ids[-1]


def load_embeddings(
    conn: psycopg.Connection, record: ModelRecord, galaxy_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Vectors of the given galaxies that have one (ids sorted), as one pair of arrays."""
    chunks = list(
        iter_embeddings(
            conn, record, where="e.galaxy_id = ANY(%s)", params=(list(map(int, galaxy_ids)),)
        )
    )
    if not chunks:
        return np.empty(0, np.int64), np.empty((0, record.embedding_dim), np.float32)
    ids, vectors = zip(*chunks, strict=True)
    return np.concatenate(ids), np.concatenate(vectors)


def count_embeddings(conn: psycopg.Connection, record: ModelRecord) -> int:
    return conn.execute(f"SELECT count(*) FROM galdb.{record.partition}").fetchone()[0]
