"""Write a head version's predictions for every embedded galaxy, then switch to it atomically.

Layout invariants:

- version ``v`` keeps its predictions in ``galdb_predictions.v<v>``, one row per galaxy
  (primary key ``v<v>_pkey`` on ``galaxy_id``). Classification: ``class_index``, ``p_<class>``
  per class, ``confidence`` (max probability), ``margin`` (top-1 minus top-2) and ``entropy``
  (nats). Regression: ``value`` and ``uncertainty`` (1 sigma, in the task's unit).
  ``head_versions.predictions_table`` records the qualified name.
- the view ``galdb_tasks.<t>`` joins the current version's table with the galaxies; the
  version's tables stay after newer ones become current, so earlier versions remain
  queryable.
- each table has one index per review-queue order (margin, entropy, confidence and each class
  probability; uncertainty for a regression), named ``v<v>_q<i>``, so the next item of a
  queue is an index scan however many galaxies there are.
- table and index names are made of the version id only (no user text), so they fit
  PostgreSQL's 63 bytes for any version id and cannot collide with anything; the schema
  ``galdb_predictions`` holds nothing else.
- a table is filled under the name ``v<v>_build`` (COPY in chunks, then its primary key and
  statistics) and only then, in one transaction, the view is pointed at it, it takes its
  final name and ``tasks.current_version`` changes. A reader therefore sees the old
  version or the new one, complete, never a half-written one.
- a build that fails drops its ``_build`` table and marks the version ``failed`` (the
  error in ``metrics.materialize_error``), or leaves it ``ready`` when it already had a
  table (re-predicting a version that still serves); a killed run leaves only a
  ``_build`` table that the next run replaces.
- a head that predicts from pixels (a fine-tuned network, ``needs_pixels``) runs a forward
  pass per galaxy, over the same galaxies (those its model embedded) in pages of
  :data:`PIXEL_CHUNK_ROWS`; its build is resumable: a failed or killed run keeps its
  ``_build`` table and the next run continues after its last galaxy (the rows are the
  version's fixed network applied to each galaxy, so they do not depend on the run).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import psycopg
import torch
from psycopg import sql

from galdb.db.binary_copy import copy_columns
from galdb.db.citus import distribute_like_galaxies
from galdb.errors import GaldbError
from galdb.heads.versions import load_version_head
from galdb.labels.tasks import MAX_IDENTIFIER_BYTES, VIEW_SCHEMA, Task
from galdb.lvm.pixels import PixelRef, pixel_columns, read_pixels
from galdb.lvm.preprocess import to_tensor
from galdb.lvm.registry import ModelRecord, lookup
from galdb.lvm.vectors import count_embeddings, iter_embeddings

CHUNK_ROWS = 65536
PIXEL_CHUNK_ROWS = 256  # galaxies per forward-pass page of a head that reads pixels
SCHEMA = "galdb_predictions"


class TableNames(NamedTuple):
    """The names a version's predictions table has, in :data:`SCHEMA`."""

    final: str
    final_pkey: str
    build: str
    build_pkey: str

    @property
    def qualified(self) -> str:
        return f"{SCHEMA}.{self.final}"


def table_names(version_id: int) -> TableNames:
    """Names of a version's table and key, while built and once current (from the id only)."""
    final, build = f"v{version_id}", f"v{version_id}_build"
    names = TableNames(final, f"{final}_pkey", build, f"{build}_pkey")
    longest = max(names, key=lambda n: len(n.encode()))
    if len(longest.encode()) > MAX_IDENTIFIER_BYTES:
        raise GaldbError(f"head version {version_id}: {longest!r} is longer than 63 bytes")
    return names


def prediction_columns(task: Task) -> list[tuple[str, str]]:
    """(column, type) of a version's predictions table, galaxy_id first (the rest is the
    task kind's)."""
    return [("galaxy_id", "int8"), *task.kind_spec.prediction_columns()]


def create_table_sql(task: Task, table: str) -> sql.Composed:
    columns = sql.SQL(", ").join(
        sql.SQL("{} {} NOT NULL").format(sql.Identifier(name), sql.SQL(pgtype))
        for name, pgtype in prediction_columns(task)
    )
    return sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(SCHEMA, table), columns)


def view_sql(task: Task, version_id: int, table: str) -> sql.Composed:
    """The task's view over one version's table (what `SELECT … FROM <task>` reads); the
    prediction fields are the task kind's."""
    fields = task.kind_spec.view_fields()
    return sql.SQL(
        "CREATE OR REPLACE VIEW {view} AS SELECT p.galaxy_id, r.name AS release, "
        "g.source_id, g.ra, g.dec, {fields}, {version}::integer AS head_version, g.props "
        "FROM {table} p JOIN galdb.galaxies g USING (galaxy_id) "
        "JOIN galdb.releases r USING (release_id)"
    ).format(
        view=sql.Identifier(VIEW_SCHEMA, task.name),
        fields=sql.SQL(", ").join(fields),
        version=sql.Literal(version_id),
        table=sql.Identifier(SCHEMA, table),
    )


def queue_index_name(table: str, i: int) -> str:
    """Name of a table's i-th review-queue index (``v12_q0``, ``v12_build_q0``)."""
    return f"{table}_q{i}"


def predicted_chunks(
    conn: psycopg.Connection,
    record: ModelRecord,
    head,
    *,
    where: str = "",
    after: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
):
    """Yield ``(galaxy_ids, prediction columns)`` for the model's embedded galaxies (those
    after ``after``, meeting ``where`` on ``e``), in galaxy_id order: from their vectors,
    or, for a head that ``needs_pixels``, from a forward pass over their cutouts."""
    condition = f"({where})" if where else "true"
    if after is not None:
        condition += f" AND e.galaxy_id > {int(after)}"
    if not getattr(head, "needs_pixels", False):
        for ids, vectors in iter_embeddings(conn, record, where=condition, chunk_rows=chunk_rows):
            yield ids, head.prediction_columns(vectors)
        return
    query = (
        f"SELECT e.galaxy_id, {pixel_columns('g')} FROM galdb.{record.partition} e "
        f"JOIN galdb.galaxies g USING (galaxy_id) WHERE e.galaxy_id > %s AND {condition} "
        f"ORDER BY e.galaxy_id LIMIT {int(min(chunk_rows, PIXEL_CHUNK_ROWS))}"
    )
    last = -(1 << 63)
    while rows := conn.execute(query, (last,)).fetchall():
        inputs = []
        for galaxy_id, *columns in rows:
            ref = PixelRef.from_row(columns)
            if ref is None:
                raise GaldbError(f"galaxy {galaxy_id} has an embedding but no pixels to predict")
            inputs.append(to_tensor(read_pixels(ref), ref.bands, head.preprocessing))
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        yield ids, head.prediction_columns(torch.stack(inputs))
        last = int(ids[-1])


def _build_rows(conn: psycopg.Connection, names: TableNames) -> tuple[int, int | None] | None:
    """(rows, last galaxy_id) of a version's leftover ``_build`` table; None without one."""
    exists = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.{names.build}",)
    ).fetchone()[0]
    if not exists:
        return None
    return conn.execute(
        sql.SQL("SELECT count(*), max(galaxy_id) FROM {}").format(
            sql.Identifier(SCHEMA, names.build)
        )
    ).fetchone()


def materialize(
    conn: psycopg.Connection,
    task: Task,
    version_id: int,
    *,
    chunk_rows: int = CHUNK_ROWS,
    progress=None,
) -> int:
    """Predict every embedded galaxy with the version's head, make it current; return the
    number of predictions.

    Commits as it goes (one transaction per chunk, then the switch); safe because the rows
    go to the version's ``_build`` table, which no reader sees until the switch. On any
    failure the build table is dropped, the version marked (see the module docstring) and
    the error re-raised.
    """
    head, model_id = load_version_head(conn, task, version_id)
    record = lookup(conn, str(model_id))
    names = table_names(version_id)
    build = sql.Identifier(SCHEMA, names.build)
    resumable = getattr(head, "needs_pixels", False)
    try:
        done = _build_rows(conn, names) if resumable else None
        total, after = done if done else (0, None)
        if done is None:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(build))
            conn.execute(create_table_sql(task, names.build))
            distribute_like_galaxies(conn, f"{SCHEMA}.{names.build}")  # on Citus only
        conn.execute(
            "UPDATE galdb.head_versions SET status = 'materializing' WHERE version_id = %s",
            (version_id,),
        )
        conn.commit()
        if progress is not None:
            what = f"predicting {task.name} v{version_id}"
            progress.start(count_embeddings(conn, record), what + (" (resumed)" if total else ""))
            progress.advance(total)
        columns = [name for name, _ in prediction_columns(task)]
        types = [pgtype for _, pgtype in prediction_columns(task)]
        for ids, predicted in predicted_chunks(
            conn, record, head, after=after, chunk_rows=chunk_rows
        ):
            values = [ids, *predicted.values()]
            copy_columns(
                conn, f"{SCHEMA}.{names.build}", columns, list(zip(values, types, strict=True))
            )
            conn.commit()
            total += len(ids)
            if progress is not None:
                progress.advance(len(ids))
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY (galaxy_id)").format(
                build, sql.Identifier(names.build_pkey)
            )
        )
        for i, key in enumerate(task.kind_spec.queue_index_keys()):
            conn.execute(
                sql.SQL("CREATE INDEX {} ON {} ({})").format(
                    sql.Identifier(queue_index_name(names.build, i)), build, sql.SQL(key)
                )
            )
        conn.execute(sql.SQL("ANALYZE {}").format(build))
        conn.commit()
        switch(conn, task, version_id, total)
    except BaseException as exc:
        _abandon(conn, version_id, names, exc, keep_build=resumable)
        raise
    return total


def _abandon(
    conn: psycopg.Connection, version_id: int, names: TableNames, exc, *, keep_build=False
) -> None:
    """Drop a failed build (unless ``keep_build``: a resumable one) and record why; never
    hides the original error."""
    try:
        conn.rollback()
        if not keep_build:
            conn.execute(
                sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(SCHEMA, names.build))
            )
        conn.execute(
            "UPDATE galdb.head_versions SET status = CASE WHEN predictions_table IS NULL "
            "THEN 'failed' ELSE 'ready' END, metrics = metrics || jsonb_build_object("
            "'materialize_error', %s::text) WHERE version_id = %s",
            (f"{type(exc).__name__}: {exc}"[:2000], version_id),
        )
        conn.commit()
    except Exception as cleanup:  # e.g. the connection itself is gone
        exc.add_note(f"galdb could not clean up {SCHEMA}.{names.build}: {cleanup}")


def switch(conn: psycopg.Connection, task: Task, version_id: int, n_predictions: int) -> None:
    """Make a fully built version current, in one transaction (see the module docstring)."""
    names = table_names(version_id)
    final = sql.Identifier(SCHEMA, names.final)
    view = sql.Identifier(VIEW_SCHEMA, task.name)
    with conn.transaction():
        conn.execute(view_sql(task, version_id, names.build))
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(final))
        conn.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                sql.Identifier(SCHEMA, names.build), sql.Identifier(names.final)
            )
        )
        conn.execute(
            sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                sql.Identifier(SCHEMA, names.build_pkey), sql.Identifier(names.final_pkey)
            )
        )
        for i in range(len(task.kind_spec.queue_index_keys())):
            conn.execute(
                sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                    sql.Identifier(SCHEMA, queue_index_name(names.build, i)),
                    sql.Identifier(queue_index_name(names.final, i)),
                )
            )
        conn.execute(sql.SQL("GRANT SELECT ON {}, {} TO galdb_reader").format(final, view))
        conn.execute(
            "UPDATE galdb.head_versions SET status = 'ready', predictions_table = %s, "
            "n_predictions = %s, materialized_at = now(), metrics = metrics - 'materialize_error' "
            "WHERE version_id = %s",
            (names.qualified, n_predictions, version_id),
        )
        conn.execute(
            "UPDATE galdb.tasks SET current_version = %s WHERE task_id = %s",
            (version_id, task.task_id),
        )
    conn.commit()


def predict_missing(
    conn: psycopg.Connection, task: Task, version_id: int, *, chunk_rows: int = CHUNK_ROWS
) -> int:
    """Add rows to a ready version's live table for the embedded galaxies of its model that
    have none (galaxies embedded after it was materialized); return how many were added.

    No new version: the rows are the version's own head applied to the new vectors, so the
    table stays what :func:`materialize` would have written. Commits once per chunk; safe
    because each chunk adds complete rows for galaxies the table lacked (readers of the task's
    view see some of the new galaxies, never a partial row), and idempotent: rows go through
    a staging table and ``ON CONFLICT DO NOTHING``, so a rerun, or two at once, adds each
    galaxy once. ``head_versions.n_predictions`` is updated with each chunk.
    """
    row = conn.execute(
        "SELECT status, predictions_table FROM galdb.head_versions "
        "WHERE version_id = %s AND task_id = %s",
        (version_id, task.task_id),
    ).fetchone()
    if row is None or row[0] != "ready" or row[1] is None:
        raise GaldbError(
            f"head version {version_id} of {task.name} is not a ready version with predictions"
        )
    head, model_id = load_version_head(conn, task, version_id)
    record = lookup(conn, str(model_id))
    names = table_names(version_id)
    live = sql.Identifier(SCHEMA, names.final)
    missing = sql.SQL("NOT EXISTS (SELECT 1 FROM {} p WHERE p.galaxy_id = e.galaxy_id)").format(
        live
    )
    columns = [name for name, _ in prediction_columns(task)]
    types = [pgtype for _, pgtype in prediction_columns(task)]
    stage = f"{names.final}_missing"
    added = 0
    for ids, predicted in predicted_chunks(
        conn, record, head, where=missing.as_string(conn), chunk_rows=chunk_rows
    ):
        conn.execute(
            sql.SQL("CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DROP").format(
                sql.Identifier(stage), live
            )
        )
        values = [ids, *predicted.values()]
        copy_columns(conn, stage, columns, list(zip(values, types, strict=True)))
        added += conn.execute(
            sql.SQL("INSERT INTO {} SELECT * FROM {} ON CONFLICT (galaxy_id) DO NOTHING").format(
                live, sql.Identifier(stage)
            )
        ).rowcount
        conn.execute(
            sql.SQL(
                "UPDATE galdb.head_versions SET n_predictions = (SELECT count(*) FROM {}) "
                "WHERE version_id = %s"
            ).format(live),
            (version_id,),
        )
        conn.commit()
    return added


class Current(NamedTuple):
    """A task's current head version: its id, its LVM model and its predictions table."""

    version: int
    model_id: int
    table: sql.Composable


def current_predictions(conn: psycopg.Connection, task: Task) -> Current:
    """The current version of a task, its model and its predictions table, or a clear error."""
    row = conn.execute(
        "SELECT t.current_version, v.model_id, v.predictions_table FROM galdb.tasks t "
        "JOIN galdb.head_versions v ON v.version_id = t.current_version WHERE t.task_id = %s",
        (task.task_id,),
    ).fetchone()
    if row is None or row[2] is None:
        raise GaldbError(
            f"task {task.name} has no current predictions: train a head first "
            f"(galdb head train --task {task.name} --model M)"
        )
    schema, _, table = row[2].rpartition(".")
    return Current(row[0], row[1], sql.Identifier(schema or "galdb", table))
