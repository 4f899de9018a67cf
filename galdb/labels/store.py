"""Write labels in bulk and read back the labels that count.

Labels arrive in chunks of ``(row, source_id, raw)``; each chunk is checked (class known,
value a finite number, id not repeated), staged with COPY and upserted in one statement
joined to the release's galaxies, so a million catalog labels load as fast as the catalog
did. Rows naming no galaxy of the release, or with a bad label, are reported by row and id;
the good rows of the same chunk are kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import psycopg
from psycopg import sql

from galdb.db.citus import is_galdb_distributed
from galdb.db.props import SAMPLE, describe, sample_columns
from galdb.errors import GaldbError
from galdb.ingest.catalog import column_values, read_chunks
from galdb.labels.tasks import SOURCES, Task

MAX_PROBLEMS = 1000  # kept in the summary; the counts are always complete


@dataclass(frozen=True)
class Problem:
    row: int | str
    source_id: str
    reason: str


@dataclass
class ImportSummary:
    read: int = 0
    stored: int = 0
    unknown: int = 0
    invalid: int = 0
    problems: list[Problem] = field(default_factory=list)

    def note(self, problem: Problem) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)


Chunk = list[tuple[int | str, str, object]]  # (row, source_id, raw label)


def import_labels(
    conn: psycopg.Connection,
    task: Task,
    release_id: int,
    chunks: Iterable[Chunk],
    *,
    source: str = "catalog",
    author: str,
    origin: str = "",
    mapping: dict[str, str] | None = None,
    progress=None,
) -> ImportSummary:
    """Validate and upsert labels.

    Commits once per chunk (a bulk load): an interrupted import keeps the chunks it
    finished, and re-running it replaces rather than duplicates (an upsert on task, galaxy,
    source and author).
    """
    if source not in SOURCES:
        raise GaldbError(f"label source {source!r}: use one of {', '.join(SOURCES)}")
    summary = ImportSummary()
    for chunk in chunks:
        summary.read += len(chunk)
        good = _validate(task, chunk, mapping or {}, summary)
        if good:
            _upsert(conn, task, release_id, good, source, author, origin, summary)
        if progress is not None:
            progress.advance(len(chunk))
    return summary


def _validate(task: Task, chunk: Chunk, mapping: dict[str, str], summary: ImportSummary):
    latest: dict[str, tuple] = {}
    for row, source_id, raw in chunk:
        try:
            label = task.kind_spec.parse_label(raw, mapping)
        except ValueError as exc:
            summary.invalid += 1
            summary.note(Problem(row, source_id, str(exc)))
            continue
        if source_id in latest:
            summary.invalid += 1
            summary.note(Problem(row, source_id, f"repeats row {latest[source_id][0]}; last kept"))
        latest[source_id] = (row, label)
    return [(row, sid, label) for sid, (row, label) in latest.items()]


def _upsert(conn, task, release_id, good, source, author, origin, summary) -> None:
    column, kind = task.kind_spec.label_column, task.kind_spec.label_type
    try:
        conn.execute(
            f'CREATE TEMP TABLE label_stage (row text, source_id text COLLATE "C", label {kind})'
        )
        with conn.cursor().copy("COPY label_stage (row, source_id, label) FROM STDIN") as cp:
            for row, sid, label in good:
                cp.write_row((str(row), sid, label))
        # The stage is read through materialized CTEs and created_at comes from EXCLUDED: on
        # Citus a distributed table may not be joined directly with a temporary table, nor may
        # DO UPDATE call now(). The same statements on one server.
        missing = conn.execute(
            "WITH s AS MATERIALIZED (SELECT row, source_id FROM label_stage), "
            "found AS MATERIALIZED (SELECT g.source_id FROM galdb.galaxies g "
            "JOIN s USING (source_id) WHERE g.release_id = %s) "
            "SELECT s.row, s.source_id FROM s "
            "WHERE NOT EXISTS (SELECT 1 FROM found f WHERE f.source_id = s.source_id)",
            (release_id,),
        ).fetchall()
        stored = conn.execute(
            "WITH s AS MATERIALIZED (SELECT source_id, label FROM label_stage) "
            "INSERT INTO galdb.labels "
            f"(task_id, galaxy_id, source, author, {column}, origin, created_at) "
            "SELECT %s, g.galaxy_id, %s, %s, s.label, %s, now() FROM s "
            "JOIN galdb.galaxies g ON g.release_id = %s AND g.source_id = s.source_id "
            f"ON CONFLICT (task_id, galaxy_id, source, author) DO UPDATE SET {column} = "
            "EXCLUDED." + column + ", origin = EXCLUDED.origin, created_at = EXCLUDED.created_at",
            (task.task_id, source, author, origin, release_id),
        ).rowcount
        conn.execute("DROP TABLE label_stage")
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    summary.stored += stored
    summary.unknown += len(missing)
    for row, sid in missing:
        summary.note(Problem(row, sid, "no galaxy with this id in the release"))


def file_chunks(path, id_column: str, label_column: str) -> Iterator[Chunk]:
    """Chunks of (row number, id, label) from a catalog file (CSV, FITS, Parquet, …)."""
    row = 1
    for table in read_chunks(path):
        for name in (id_column, label_column):
            if name not in table.colnames:
                raise GaldbError(f"{path}: no column {name!r} (columns: {table.colnames})")
        ids = column_values(table, id_column)
        labels = column_values(table, label_column)
        pairs = zip(ids, labels, strict=True)
        yield [(row + i, str(sid), lab) for i, (sid, lab) in enumerate(pairs)]
        row += len(table)


def vote_chunks(
    path,
    id_column: str,
    *,
    count_columns: list[str] | None = None,
    fraction_columns: list[str] | None = None,
    total_column: str | None = None,
    total: float | None = None,
) -> Iterator[Chunk]:
    """Chunks of (row number, id, votes) for a vote task from a catalog file: one count
    column per answer, or one fraction column per answer with the number of votes (a column,
    or the same ``total`` for every row). Each label is ``{"counts": […]}`` or
    ``{"fractions": […], "total": N}`` (see :func:`galdb.heads.kinds.votes.counts_from`).

    Raises
    ------
    GaldbError
        Neither or both of counts and fractions; fractions without a total, or with both a
        total column and a fixed total; a column the file lacks.
    """
    if bool(count_columns) == bool(fraction_columns):
        raise GaldbError("give the votes as count columns or as fraction columns (one of them)")
    if count_columns and (total_column or total is not None):
        raise GaldbError("a total goes with fraction columns, not with count columns")
    if fraction_columns and (total_column is None) == (total is None):
        raise GaldbError(
            "fractions need the number of votes they were measured on to weigh each galaxy: "
            "give a total column or a fixed total (one of them)"
        )
    columns = list(count_columns or fraction_columns)
    row = 1
    for table in read_chunks(path):
        wanted = [id_column, *columns] + ([total_column] if total_column else [])
        for name in wanted:
            if name not in table.colnames:
                raise GaldbError(f"{path}: no column {name!r} (columns: {table.colnames})")
        ids = column_values(table, id_column)
        values = list(zip(*(column_values(table, c) for c in columns), strict=True))
        totals = column_values(table, total_column) if total_column else [total] * len(ids)
        chunk = []
        for i, (sid, v, n) in enumerate(zip(ids, values, totals, strict=True)):
            label = {"counts": list(v)} if count_columns else {"fractions": list(v), "total": n}
            chunk.append((row + i, str(sid), label))
        yield chunk
        row += len(table)


def catalog_chunks(
    conn: psycopg.Connection, release_id: int, column: str, chunk_rows: int = 50_000
) -> Iterator[Chunk]:
    """Chunks of (source_id, id, label) from a catalog column already ingested into props
    (keyset pages: each import chunk commits, which would close a server-side cursor).

    Raises
    ------
    GaldbError
        If no galaxy of the release has ``column``, naming the columns that exist. A column
        that exists with empty values is not this case: its rows come out as empty labels.
    """
    after, found = 0, False
    while rows := conn.execute(
        "SELECT galaxy_id, source_id, props->>%s FROM galdb.galaxies WHERE release_id = %s "
        "AND galaxy_id > %s AND props ? %s ORDER BY galaxy_id LIMIT %s",
        (column, release_id, after, column, chunk_rows),
    ).fetchall():
        after, found = rows[-1][0], True
        yield [(sid, sid, raw) for _, sid, raw in rows]
    if not found:  # the whole release was read: not one galaxy has the column
        (release,) = conn.execute(
            "SELECT name FROM galdb.releases WHERE release_id = %s", (release_id,)
        ).fetchone()
        columns = sample_columns(conn, [release_id])
        raise GaldbError(
            f"no galaxy of release {release!r} has the catalog column {column!r}; "
            f"columns in up to {SAMPLE:,} of its galaxies: {describe(columns)}"
        )


@dataclass
class LabelSet:
    """Effective labels of a task that have an embedding, ready for a head."""

    galaxy_ids: np.ndarray  # int64, sorted
    label_ids: np.ndarray
    sources: np.ndarray  # str
    targets: np.ndarray  # class index (int) or value (float)


def effective_labels_source(conn: psycopg.Connection) -> sql.Composable:
    """Where the labels that count per galaxy come from, with ``%(task_id)s`` and
    ``%(sources)s`` placeholders (``None`` sources: all): among those sources, the label of
    highest precedence, then the newest. The rule is the SQL function
    ``galdb.effective_labels_of`` (migration 0006), which the ``effective_labels`` view uses
    too; on Citus its body as a subquery (see :func:`_rule_body`)."""
    body = _rule_body(conn)
    if body is not None:
        return sql.SQL("({})").format(sql.SQL(body))
    return sql.SQL("galdb.effective_labels_of(%(task_id)s, %(sources)s)")


def effective_labels_sql(column: str, source: sql.Composable) -> sql.Composed:
    """Per galaxy, the effective label's ``column`` of galdb.labels from ``source``
    (:func:`effective_labels_source`), ordered by galaxy."""
    return sql.SQL(
        "SELECT e.galaxy_id, e.label_id, e.source, e.{} FROM {} e ORDER BY e.galaxy_id"
    ).format(sql.Identifier(column), source)


def _rule_body(conn: psycopg.Connection) -> str | None:
    """On Citus, ``galdb.effective_labels_of``'s body with its parameters as placeholders.

    Citus does not run an SQL function whose body reads a distributed table with parameters
    (PostgreSQL would inline it; Citus plans the call first). The body is read from the
    server, so the rule keeps one definition, the migrations'. ``None`` on one server."""
    if not is_galdb_distributed(conn):
        return None
    body = conn.execute(
        "SELECT prosrc FROM pg_proc "
        "WHERE oid = 'galdb.effective_labels_of(integer, text[])'::regprocedure"
    ).fetchone()[0]
    body = body.replace("%", "%%")
    body = re.sub(r"\bp_task_id\b", "%(task_id)s::integer", body)
    return re.sub(r"\bp_sources\b", "%(sources)s::text[]", body)


def effective_labels(
    conn: psycopg.Connection, task: Task, sources: tuple[str, ...] = SOURCES
) -> LabelSet:
    """The labels that count per galaxy (see :func:`effective_labels_sql`) as head targets."""
    kind = task.kind_spec
    rows = conn.execute(
        effective_labels_sql(kind.label_column, effective_labels_source(conn)),
        {"task_id": task.task_id, "sources": list(sources)},
    ).fetchall()
    return LabelSet(
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=np.int64),
        np.array([r[2] for r in rows], dtype=object),
        kind.targets([r[3] for r in rows]),
    )


def shown_labels(conn: psycopg.Connection, task: Task, galaxy_ids: list[int]) -> dict[int, str]:
    """The effective label of each of these galaxies that has one, as text (the class, or the
    value), from every source: what a reviewer sees beside a galaxy."""
    rows = conn.execute(
        sql.SQL(
            "SELECT e.galaxy_id, coalesce(e.class, e.value::text) FROM {} e "
            "WHERE e.galaxy_id = ANY(%(ids)s)"
        ).format(effective_labels_source(conn)),
        {"task_id": task.task_id, "sources": None, "ids": list(galaxy_ids)},
    ).fetchall()
    return dict(rows)
