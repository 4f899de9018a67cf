"""Rows of ``galdb.knn_neighbours`` written by binary COPY, a whole graph in seconds.

A row is ``(graph_id int4, galaxy_id int8, neighbour_ids int8[], similarities real[])``.
When every row of a batch has the same number ``k`` of neighbours, its binary COPY layout is
a fixed record (the arrays included), so numpy encodes the batch at once
(:mod:`galdb.db.binary_copy` does the same for scalar columns).
"""

from __future__ import annotations

import numpy as np
import psycopg

from galdb.db.binary_copy import SIGNATURE, TRAILER

INT8_OID, FLOAT4_OID = 20, 700
COPY_ROWS = 100_000
COPY_SQL = (
    "COPY galdb.knn_neighbours (graph_id, galaxy_id, neighbour_ids, similarities) "
    "FROM STDIN (FORMAT binary)"
)


def _array_dtype(element: str, k: int) -> np.dtype:
    """A one-dimensional PostgreSQL array of ``k`` non-null values, binary COPY layout."""
    return np.dtype(
        [
            ("ndim", ">i4"),
            ("has_null", ">i4"),
            ("oid", ">i4"),
            ("size", ">i4"),
            ("lower", ">i4"),
            ("elements", [("len", ">i4"), ("value", element)], (k,)),
        ]
    )


def encode_rows(
    graph_id: int, galaxy_ids: np.ndarray, neighbour_ids: np.ndarray, similarities: np.ndarray
) -> bytes:
    """Binary COPY rows (no header or trailer) of galaxies with ``k`` neighbours each:
    ``neighbour_ids`` and ``similarities`` are ``(n, k)``, nearest first."""
    k = neighbour_ids.shape[1]
    ids_t, sims_t = _array_dtype(">i8", k), _array_dtype(">f4", k)
    rows = np.zeros(
        len(galaxy_ids),
        dtype=[
            ("nfields", ">i2"),
            ("len0", ">i4"),
            ("graph", ">i4"),
            ("len1", ">i4"),
            ("galaxy", ">i8"),
            ("len2", ">i4"),
            ("ids", ids_t),
            ("len3", ">i4"),
            ("sims", sims_t),
        ],
    )
    rows["nfields"], rows["len0"], rows["graph"] = 4, 4, graph_id
    rows["len1"], rows["galaxy"] = 8, galaxy_ids
    rows["len2"], rows["len3"] = ids_t.itemsize, sims_t.itemsize
    for field, oid, values, width in (
        ("ids", INT8_OID, neighbour_ids, 8),
        ("sims", FLOAT4_OID, similarities, 4),
    ):
        array = rows[field]
        array["ndim"], array["oid"], array["size"], array["lower"] = 1, oid, k, 1
        array["elements"]["len"] = width
        array["elements"]["value"] = values
    return rows.tobytes()


def write_rows(
    conn: psycopg.Connection,
    graph_id: int,
    galaxy_ids: np.ndarray,
    neighbour_ids: np.ndarray,
    similarities: np.ndarray,
    *,
    progress=None,
) -> int:
    """COPY one row per galaxy into ``galdb.knn_neighbours``; return the rows written.

    ``neighbour_ids`` (galaxy ids) and ``similarities`` are ``(n, k)``, nearest first; an
    id of -1 marks a missing neighbour (a row keeps those before it; a row with none is not
    written). Runs in the caller's transaction; does not commit.
    """
    count = (neighbour_ids >= 0).sum(axis=1)
    written = 0
    with conn.cursor() as cur, cur.copy(COPY_SQL) as cp:
        cp.write(SIGNATURE)
        for width in np.unique(count[count > 0]):
            rows = np.flatnonzero(count == width)
            for start in range(0, len(rows), COPY_ROWS):
                part = rows[start : start + COPY_ROWS]
                cp.write(
                    encode_rows(
                        graph_id,
                        galaxy_ids[part],
                        neighbour_ids[part, :width],
                        similarities[part, :width],
                    )
                )
                written += len(part)
                if progress is not None:
                    progress.advance(len(part))
        cp.write(TRAILER)
    return written
