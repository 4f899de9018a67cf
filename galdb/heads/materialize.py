"""Write a head version's predictions for every embedded galaxy, then switch to it atomically.

Layout invariants:

- version ``v`` of task ``t`` keeps its predictions in ``galdb.predictions_<t>_v<v>``, one row
  per galaxy (primary key ``galaxy_id``). Classification: ``class_index``, ``p_<class>`` per
  class, ``confidence`` (max probability), ``margin`` (top-1 minus top-2) and ``entropy``
  (nats). Regression: ``value`` and ``uncertainty`` (1 sigma, in the task's unit).
- the view ``galdb.<t>`` joins the current version's table with the galaxies; the
  version's tables stay after newer ones become current, so earlier versions remain
  queryable.
- a table is filled under the name ``…_build`` (COPY in chunks, then its primary key and
  statistics) and only then, in one transaction, the view is pointed at it, it takes its
  final name and ``tasks.current_version`` changes. A reader therefore sees the old
  version or the new one, complete, never a half-written one; an interrupted run leaves
  only a ``_build`` table that the next run replaces.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from galdb.db.binary_copy import copy_columns
from galdb.heads.versions import load_version_head
from galdb.labels.tasks import Task
from galdb.lvm.registry import lookup
from galdb.lvm.vectors import count_embeddings, iter_embeddings

CHUNK_ROWS = 65536


def table_name(task: Task, version_id: int) -> str:
    return f"predictions_{task.name}_v{version_id}"


def prediction_columns(task: Task) -> list[tuple[str, str]]:
    """(column, type) of a version's predictions table, galaxy_id first."""
    if task.is_classification:
        probabilities = [(f"p_{c}", "float4") for c in task.classes]
        return [
            ("galaxy_id", "int8"),
            ("class_index", "int2"),
            *probabilities,
            ("confidence", "float4"),
            ("margin", "float4"),
            ("entropy", "float4"),
        ]
    return [("galaxy_id", "int8"), ("value", "float8"), ("uncertainty", "float8")]


def create_table_sql(task: Task, table: str) -> sql.Composed:
    columns = sql.SQL(", ").join(
        sql.SQL("{} {} NOT NULL").format(sql.Identifier(name), sql.SQL(pgtype))
        for name, pgtype in prediction_columns(task)
    )
    return sql.SQL("CREATE TABLE galdb.{} ({})").format(sql.Identifier(table), columns)


def view_sql(task: Task, version_id: int, table: str) -> sql.Composed:
    """The task's view over one version's table (what `SELECT … FROM <task>` reads)."""
    if task.is_classification:
        label = sql.SQL("(ARRAY[{}])[p.class_index + 1] AS label").format(
            sql.SQL(", ").join(sql.Literal(c) for c in task.classes)
        )
        fields = [label] + [
            sql.SQL("p.{}").format(sql.Identifier(name)) for name, _ in prediction_columns(task)[2:]
        ]
    else:
        fields = [sql.SQL("p.value"), sql.SQL("p.uncertainty")]
    return sql.SQL(
        "CREATE OR REPLACE VIEW galdb.{view} AS SELECT p.galaxy_id, r.name AS release, "
        "g.source_id, g.ra, g.dec, {fields}, {version}::integer AS head_version, g.props "
        "FROM galdb.{table} p JOIN galdb.galaxies g USING (galaxy_id) "
        "JOIN galdb.releases r USING (release_id)"
    ).format(
        view=sql.Identifier(task.name),
        fields=sql.SQL(", ").join(fields),
        version=sql.Literal(version_id),
        table=sql.Identifier(table),
    )


def materialize(
    conn: psycopg.Connection,
    task: Task,
    version_id: int,
    *,
    chunk_rows: int = CHUNK_ROWS,
    progress=None,
) -> int:
    """Predict every embedded galaxy with the version's head, make it current; return the
    number of predictions."""
    head, model_id = load_version_head(conn, task, version_id)
    record = lookup(conn, str(model_id))
    final = table_name(task, version_id)
    build = f"{final}_build"
    conn.execute(sql.SQL("DROP TABLE IF EXISTS galdb.{}").format(sql.Identifier(build)))
    conn.execute(create_table_sql(task, build))
    conn.execute(
        "UPDATE galdb.head_versions SET status = 'materializing' WHERE version_id = %s",
        (version_id,),
    )
    conn.commit()
    if progress is not None:
        progress.start(count_embeddings(conn, record), f"predicting {task.name} v{version_id}")
    names = [name for name, _ in prediction_columns(task)]
    types = [pgtype for _, pgtype in prediction_columns(task)]
    total = 0
    for ids, vectors in iter_embeddings(conn, record, chunk_rows=chunk_rows):
        values = [ids, *head.prediction_columns(vectors).values()]
        copy_columns(conn, f"galdb.{build}", names, list(zip(values, types, strict=True)))
        conn.commit()
        total += len(ids)
        if progress is not None:
            progress.advance(len(ids))
    conn.execute(
        sql.SQL("ALTER TABLE galdb.{} ADD CONSTRAINT {} PRIMARY KEY (galaxy_id)").format(
            sql.Identifier(build), sql.Identifier(f"{build}_pkey")
        )
    )
    conn.execute(sql.SQL("ANALYZE galdb.{}").format(sql.Identifier(build)))
    conn.commit()
    switch(conn, task, version_id, total)
    return total


def switch(conn: psycopg.Connection, task: Task, version_id: int, n_predictions: int) -> None:
    """Make a fully built version current, in one transaction (see the module docstring)."""
    final = table_name(task, version_id)
    build = f"{final}_build"
    with conn.transaction():
        conn.execute(view_sql(task, version_id, build))
        conn.execute(sql.SQL("DROP TABLE IF EXISTS galdb.{}").format(sql.Identifier(final)))
        conn.execute(
            sql.SQL("ALTER TABLE galdb.{} RENAME TO {}").format(
                sql.Identifier(build), sql.Identifier(final)
            )
        )
        conn.execute(
            sql.SQL("ALTER INDEX galdb.{} RENAME TO {}").format(
                sql.Identifier(f"{build}_pkey"), sql.Identifier(f"{final}_pkey")
            )
        )
        conn.execute(
            sql.SQL("GRANT SELECT ON galdb.{}, galdb.{} TO galdb_reader").format(
                sql.Identifier(final), sql.Identifier(task.name)
            )
        )
        conn.execute(
            "UPDATE galdb.head_versions SET status = 'ready', predictions_table = %s, "
            "n_predictions = %s, materialized_at = now() WHERE version_id = %s",
            (final, n_predictions, version_id),
        )
        conn.execute(
            "UPDATE galdb.tasks SET current_version = %s WHERE task_id = %s",
            (version_id, task.task_id),
        )
    conn.commit()
