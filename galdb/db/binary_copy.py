"""PostgreSQL binary COPY to and from numpy, without a Python call per row.

When every column has a fixed width (int2/int4/int8/float4/float8, or a halfvec of known
dimension), a row of the binary COPY format is a fixed record: field count, then (length,
value) per field, all big-endian. One structured numpy array then holds a whole chunk:
a million prediction rows are written, or a million kNN edges read, in about a second.
"""

from __future__ import annotations

import numpy as np
import psycopg

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
TYPES = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "float4": ">f4", "float8": ">f8"}


def encode(columns: list[tuple[np.ndarray, str]]) -> bytes:
    """A complete binary COPY payload (header, rows, trailer) for same-length columns."""
    n = len(columns[0][0])
    fields = [("nfields", ">i2")]
    for i, (_, pgtype) in enumerate(columns):
        fields += [(f"len{i}", ">i4"), (f"f{i}", TYPES[pgtype])]
    rows = np.empty(n, dtype=np.dtype(fields))
    rows["nfields"] = len(columns)
    for i, (values, pgtype) in enumerate(columns):
        if len(values) != n:
            raise ValueError("columns of different lengths")
        rows[f"len{i}"] = np.dtype(TYPES[pgtype]).itemsize
        rows[f"f{i}"] = values
    return SIGNATURE + rows.tobytes() + TRAILER


def copy_columns(
    conn: psycopg.Connection, table: str, names: list[str], columns: list[tuple[np.ndarray, str]]
) -> None:
    """COPY the columns into ``table`` (a qualified, trusted name) in the current transaction."""
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN (FORMAT binary)") as cp,
    ):
        cp.write(encode(columns))


def read_fixed(
    conn: psycopg.Connection, query: str, params: tuple, fields: list[tuple[str, object]]
) -> np.ndarray:
    """Run ``COPY (query) TO STDOUT (FORMAT binary)`` and decode it as a structured array.

    ``fields`` gives each column's big-endian dtype (e.g. ``(">i8")``, or a structured dtype
    for a composite value such as a halfvec); a NULL or a variable-width value would not fit
    the record and is an error.
    """
    layout = [("nfields", ">i2")]
    for name, dtype in fields:
        layout += [(f"len_{name}", ">i4"), (name, dtype)]
    dtype = np.dtype(layout)
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY ({query}) TO STDOUT (FORMAT binary)", params or None) as copy,
    ):
        data = b"".join(bytes(block) for block in copy)
    body = len(data) - len(SIGNATURE) - len(TRAILER)
    if body % dtype.itemsize:
        raise ValueError("COPY rows are not of the fixed width expected (a NULL value?)")
    return np.frombuffer(data, dtype=dtype, count=body // dtype.itemsize, offset=len(SIGNATURE))
