"""Read-only SQL for users: ``galdb sql``.

Four guards, each enough for most mistakes and together for deliberate tricks:

1. the statement runs on a connection logged in as ``galdb_reader`` (SELECT on the galdb schema,
   nothing else, and no superuser session to ``SET ROLE`` back to);
2. inside a ``READ ONLY`` transaction, which the server enforces for every write, including
   writes done by functions and ``nextval``; the transaction is always rolled back;
3. through the extended query protocol, which accepts exactly one statement, so
   ``SELECT 1; COMMIT; DROP …`` is refused before anything runs;
4. under ``statement_timeout``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import errors

from galdb.db.connect import connect_reader
from galdb.db.settings import Settings
from galdb.errors import GaldbError, ReadOnlyViolation

FETCH_CHUNK = 5000


@dataclass
class QueryResult:
    """Column names and rows of one query; ``truncated`` when ``max_rows`` cut it."""

    columns: list[str]
    rows: list[tuple] = field(default_factory=list)
    truncated: bool = False


def run_readonly(settings: Settings, query: str, *, max_rows: int | None = None) -> QueryResult:
    """Run one statement read-only as ``galdb_reader`` and return its rows.

    Raises
    ------
    ReadOnlyViolation
        The statement tried to write, to use a privilege the reader lacks, or held several
        statements.
    GaldbError
        Any other SQL error (syntax, unknown column, timeout), with the server's message.
    """
    with connect_reader(settings) as conn:
        conn.read_only = True
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT set_config('statement_timeout', %s, true)",
                    (str(settings.statement_timeout_ms),),
                )
                cur.execute(query, prepare=True)
                return _collect(cur, max_rows)
        except psycopg.Error as exc:
            raise _explain(exc, settings) from exc
        finally:
            conn.rollback()


def _collect(cur: psycopg.Cursor, max_rows: int | None) -> QueryResult:
    if cur.description is None:  # e.g. SET, which read-only mode allows but returns nothing
        return QueryResult(columns=[])
    result = QueryResult(columns=[d.name for d in cur.description])
    while chunk := cur.fetchmany(FETCH_CHUNK):
        result.rows.extend(chunk)
        if max_rows is not None and len(result.rows) > max_rows:
            del result.rows[max_rows:]
            result.truncated = True
            break
    return result


def _explain(exc: psycopg.Error, settings: Settings) -> GaldbError:
    message = (exc.diag.message_primary or str(exc)).strip()
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
    return GaldbError(f"SQL error: {message}")
