"""Read-only SQL for users: ``galdb sql``.

Four guards, each enough for most mistakes and together for deliberate tricks:

1. the statement runs on a connection logged in as ``galdb_reader`` (SELECT on the galdb schema,
   nothing else, and no superuser session to ``SET ROLE`` back to);
2. inside a ``READ ONLY`` transaction, which the server enforces for every write, including
   writes done by functions and ``nextval``; the transaction is never committed (the
   connection is closed with it open, which rolls it back);
3. through the extended query protocol, which accepts exactly one statement, so
   ``SELECT 1; COMMIT; DROP …`` is refused before anything runs (the ``DECLARE`` of the
   server-side cursor is sent that way too);
4. under ``statement_timeout``.

Results stream and are bounded. A query (``SELECT``, ``VALUES``, ``TABLE``, ``WITH … SELECT``)
runs in a named server-side cursor: rows are fetched in chunks, the first of one row and the
next sized from the bytes of the last (about :data:`FETCH_BYTES` each), so the server computes
no more rows than are read and reading stops at ``max_rows``. The bytes of the rows read are
counted as they arrive; past ``max_bytes`` (:data:`DEFAULT_MAX_BYTES`, or
``GALDB_SQL_MAX_BYTES``) reading stops with :class:`ResultTooLarge`. A row arrives whole (libpq
receives a row in one message), so the client may hold up to ``max_bytes`` plus one fetch
before it refuses. Statements that ``DECLARE`` does not take (``SHOW``, ``EXPLAIN``, ``SET``)
run as plain statements: their results are small and counted the same way.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg import errors, sql
from psycopg.pq import TransactionStatus

from galdb.db.connect import connect_reader
from galdb.db.settings import Settings
from galdb.errors import GaldbError, ReadOnlyViolation

DEFAULT_MAX_BYTES = 256 * 2**20
MAX_BYTES_ENV = "GALDB_SQL_MAX_BYTES"
FETCH_BYTES = 4 * 2**20
MAX_FETCH_ROWS = 10_000
CURSOR_NAME = "galdb_sql"
_UNITS = {"": 1, "b": 1, "kib": 2**10, "mib": 2**20, "gib": 2**30}


class ResultTooLarge(GaldbError):
    """A result grew past the bytes ``galdb sql`` may hold in memory."""


@dataclass
class QueryResult:
    """Column names and rows of one query; ``truncated`` when ``max_rows`` cut it."""

    columns: list[str]
    rows: list[tuple] = field(default_factory=list)
    truncated: bool = False


def max_result_bytes() -> int:
    """The byte bound of a result: ``GALDB_SQL_MAX_BYTES`` (e.g. ``512MiB``), else the default."""
    text = os.environ.get(MAX_BYTES_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_BYTES
    match = re.fullmatch(r"(\d+)\s*([a-zA-Z]*)", text)
    unit = match and _UNITS.get(match[2].lower())
    if not unit or int(match[1]) <= 0:
        raise GaldbError(
            f"{MAX_BYTES_ENV}={text!r} is not a size: give bytes, or a number with KiB, MiB "
            "or GiB (e.g. 1GiB)"
        )
    return int(match[1]) * unit


class ResultStream:
    """The rows of one read-only statement, read as they are consumed.

    Attributes
    ----------
    columns : list of str
        Column names (empty for a statement that returns no rows, e.g. ``SET``).
    type_names : list of str
        PostgreSQL type name of each column (``int8``, ``float8``, ``text``, ``jsonb``…).
    rows_read, bytes_read : int
        Rows handed out so far and their estimated size in memory.
    truncated : bool
        True once ``max_rows`` rows were read and the statement had more.
    """

    def __init__(
        self,
        cursor: psycopg.Cursor,
        *,
        server_side: bool,
        max_rows: int | None,
        max_bytes: int,
        hold: bool,
    ) -> None:
        self._cur, self._server_side = cursor, server_side
        self._max_rows, self._max_bytes, self._hold = max_rows, max_bytes, hold
        description = cursor.description or []
        self.columns = [d.name for d in description]
        types = cursor.connection.adapters.types
        self.type_names = [getattr(types.get(d.type_code), "name", "text") for d in description]
        self.rows_read = self.bytes_read = 0
        self.truncated = False

    def chunks(self) -> Iterator[list[tuple]]:
        """Yield the rows in chunks; stop at ``max_rows``; raise past ``max_bytes``."""
        if not self.columns:
            return
        size = 1  # the first fetch is one row: a row may be huge
        while True:
            if self._max_rows is not None and self.rows_read >= self._max_rows:
                self.truncated = self._more_rows()
                return
            if self._max_rows is not None:
                size = min(size, self._max_rows - self.rows_read)
            chunk = self._cur.fetchmany(size)
            if not chunk:
                return
            chunk_bytes = sum(map(_row_bytes, chunk))
            self._check_bytes(chunk_bytes, len(chunk))
            self.rows_read += len(chunk)
            self.bytes_read += chunk_bytes
            yield chunk
            per_row = max(1, chunk_bytes // len(chunk))
            size = max(1, min(2 * len(chunk), FETCH_BYTES // per_row, MAX_FETCH_ROWS))

    def rows(self) -> Iterator[tuple]:
        """Yield the rows one by one (see :meth:`chunks`)."""
        for chunk in self.chunks():
            yield from chunk

    def _check_bytes(self, chunk_bytes: int, n_rows: int) -> None:
        held = self.bytes_read + chunk_bytes if self._hold else chunk_bytes
        if held <= self._max_bytes:
            return
        limit = f"{self._max_bytes / 2**20:,.0f} MiB"
        if self._hold:
            what = f"the result passed {limit} after {self.rows_read + n_rows:,} rows"
            advice = (
                "select fewer rows or columns (LIMIT, WHERE, substr() of long values), "
                "write it to a CSV, ECSV or VOTable file (streamed, not held)"
            )
        else:
            what = f"{n_rows:,} row(s) near row {self.rows_read + 1:,} hold more than {limit}"
            advice = "select shorter values (substr(), fewer columns)"
        raise ResultTooLarge(
            f"{what}, the most galdb sql holds in memory: {advice}, or raise {MAX_BYTES_ENV}"
        )

    def _more_rows(self) -> bool:
        if not self._server_side:
            return self.rows_read < (self._cur.rowcount or 0)
        # MOVE skips a row on the server without sending it (it may be a huge one).
        status = self._cur.connection.execute(
            sql.SQL("MOVE FORWARD 1 IN {}").format(sql.Identifier(CURSOR_NAME))
        ).statusmessage
        return status == "MOVE 1"


@contextmanager
def stream_readonly(
    settings: Settings,
    query: str,
    *,
    max_rows: int | None = None,
    max_bytes: int | None = None,
    hold: bool = True,
) -> Iterator[ResultStream]:
    """Run one statement read-only as ``galdb_reader``; yield its rows as they arrive.

    Parameters
    ----------
    settings : Settings
        Where the database is; ``statement_timeout_ms`` bounds the statement.
    query : str
        One SQL statement.
    max_rows : int, optional
        Read at most this many rows (the rest are never fetched; ``truncated`` tells).
    max_bytes : int, optional
        Bound on the bytes of rows held (default :func:`max_result_bytes`).
    hold : bool
        True when the caller keeps every row (printing, collecting): ``max_bytes`` bounds the
        total. False when it writes each chunk out and drops it: ``max_bytes`` bounds a chunk.

    Raises
    ------
    ReadOnlyViolation
        The statement tried to write, to use a privilege the reader lacks, or held several
        statements.
    ResultTooLarge
        The rows passed ``max_bytes``.
    GaldbError
        Any other SQL error (syntax, unknown column, timeout, a lost session), with the
        server's message.
    """
    limit = max_result_bytes() if max_bytes is None else max_bytes
    conn = connect_reader(settings)
    cursor = None
    try:
        conn.read_only = True
        cursor, server_side = _execute(conn, query, settings)
        yield ResultStream(
            cursor, server_side=server_side, max_rows=max_rows, max_bytes=limit, hold=hold
        )
    except psycopg.Error as exc:
        raise _explain(exc, conn, settings) from exc
    finally:
        if cursor is not None:
            _close_quietly(cursor)
        conn.close()  # never committed: closing rolls the read-only transaction back


def run_readonly(
    settings: Settings, query: str, *, max_rows: int | None = None, max_bytes: int | None = None
) -> QueryResult:
    """Run one statement read-only and return all its rows (see :func:`stream_readonly`)."""
    with stream_readonly(settings, query, max_rows=max_rows, max_bytes=max_bytes) as stream:
        rows = list(stream.rows())
        return QueryResult(columns=stream.columns, rows=rows, truncated=stream.truncated)


def _execute(
    conn: psycopg.Connection, query: str, settings: Settings
) -> tuple[psycopg.Cursor, bool]:
    _set_timeout(conn, settings)
    cursor = conn.cursor(name=CURSOR_NAME)
    try:
        cursor.execute(query)  # DECLARE … CURSOR FOR <query>: runs nothing until fetched
        return cursor, True
    except (errors.SyntaxError, errors.FeatureNotSupported):
        # DECLARE takes only a query without writes. Anything else (SHOW, EXPLAIN, SET, a
        # genuine syntax error, a data-modifying WITH) runs as the plain statement, whose own
        # error, if any, is the one to report.
        _close_quietly(cursor)
        conn.rollback()
    except BaseException:
        _close_quietly(cursor)
        raise
    _set_timeout(conn, settings)
    cursor = conn.cursor()
    cursor.execute(query, prepare=True)  # extended protocol: exactly one statement
    return cursor, False


def _close_quietly(cursor: psycopg.Cursor) -> None:
    """Close a cursor whatever state its connection is in (it may be lost or mid-COPY)."""
    try:
        cursor.close()
    except psycopg.Error:
        pass


def _set_timeout(conn: psycopg.Connection, settings: Settings) -> None:
    conn.execute(
        "SELECT set_config('statement_timeout', %s, true)", (str(settings.statement_timeout_ms),)
    )


def _row_bytes(row: tuple) -> int:
    """Estimated bytes of a row's values (text length, 8 per number, the JSON text)."""
    total = 0
    for value in row:
        if value is None:
            continue
        if isinstance(value, str | bytes | bytearray | memoryview):
            total += len(value)
        elif isinstance(value, int | float | decimal.Decimal | dt.date | dt.time | dt.timedelta):
            total += 8
        elif isinstance(value, dict | list):
            total += len(json.dumps(value, default=str))
        else:
            total += len(str(value))
    return total


def _explain(exc: psycopg.Error, conn: psycopg.Connection, settings: Settings) -> GaldbError:
    message = (getattr(exc.diag, "message_primary", None) or str(exc)).strip()
    if isinstance(exc, errors.ReadOnlySqlTransaction):
        return ReadOnlyViolation(f"refused: galdb sql only reads ({message})")
    if isinstance(exc, errors.InsufficientPrivilege):
        return ReadOnlyViolation(f"refused: the read-only role may not do this ({message})")
    if "multiple commands" in message:
        return ReadOnlyViolation("refused: give exactly one SQL statement (no ';'-separated list)")
    if isinstance(exc, errors.QueryCanceled):
        return GaldbError(
            f"query cancelled after the {settings.statement_timeout_ms} ms statement timeout "
            "(set GALDB_STATEMENT_TIMEOUT_MS to allow longer)"
        )
    if conn.closed or conn.pgconn.transaction_status == TransactionStatus.UNKNOWN:
        return GaldbError(
            f"the database ended the session running the statement ({message}); "
            "galdb sql cannot run a statement that terminates its own connection"
        )
    if conn.pgconn.transaction_status == TransactionStatus.ACTIVE and "COPY" in message:
        return GaldbError(
            "COPY … TO STDOUT is not supported by galdb sql: run the SELECT itself, and use "
            "--out FILE (csv, ecsv, fits, parquet, vot) for a file"
        )
    return GaldbError(f"SQL error: {message}")
