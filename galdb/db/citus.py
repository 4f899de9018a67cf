"""galdb on Citus: which tables are distributed, which are reference tables, and why.

``galdb db init --citus`` runs the ordinary migrations on the coordinator (the same revisions
as on a single PostgreSQL), then :func:`distribute` turns galdb's tables into Citus tables.
It is idempotent: a table already distributed is left alone, so ``db init --citus`` can run
again after a ``db migrate``. Citus is a separate server extension (AGPL-3.0) that galdb only
talks SQL to; the coordinator needs ``shared_preload_libraries = 'citus'`` and
``CREATE EXTENSION citus`` (a superuser's), the workers the same plus pgvector.

Layout
------
* **Distribution column ``galaxy_id``, all co-located** with ``galdb.galaxies``:
  ``galaxies``, ``embeddings`` (a partitioned table: each model's partition
  ``embeddings_m<id>`` is distributed with it, including partitions created later by
  ``galdb embed``), ``labels``, ``head_labels``, ``knn_neighbours`` (the propagation kNN
  graph), ``review_leases`` and every head version's predictions table
  (``galdb_predictions.v<v>``, distributed by :func:`distribute_like_galaxies` when
  materialization creates it). Co-location makes every join on ``galaxy_id`` (embeddings
  with galaxies, predictions with galaxies, labels with galaxies) a per-shard join.
* **Reference tables** (a full copy on every node; small, joined by everything):
  ``surveys``, ``releases``, ``models``, ``tasks``, ``head_versions``, ``knn_graphs``.
* **Coordinator-only** (plain tables of the coordinator): the bookkeeping tables
  ``ingest_runs``, ``ingest_files``, ``quarantine``, ``jobs``, ``pipelines``,
  ``review_decisions``.

The shard count of the galaxies (and so of every co-located table) is ``--shards`` or the
server's ``citus.shard_count`` (32); each shard has its own HNSW index, and a kNN query
searches all of them, so a few shards per worker core is the right size (see the README's
sizing note).

Constraints Citus refuses, and galdb's choice
---------------------------------------------
Citus enforces a unique constraint only when it contains the distribution column (each shard
checks its own rows). Two of galdb's do not:

* ``galaxies UNIQUE (release_id, source_id)``: replaced by a plain index on the same columns
  (lookups by source id stay index scans on every shard). Uniqueness is kept by the one path
  that writes galaxies, the ingest loader: an ingest holds its release's lock, asks which
  source ids of a batch are stored before writing, and refuses duplicates inside a batch. A
  row written by hand with ``INSERT`` bypasses that check on Citus (not on a single server).
  The alternatives were rejected: a hash of (release, source id) as ``galaxy_id`` would change
  the ids galdb hands out (a sequence), and a lookup table keyed on the source id would
  double every ingest's writes and not be co-located with anything.
* ``labels PRIMARY KEY (label_id)``: becomes ``PRIMARY KEY (label_id, galaxy_id)``;
  ``label_id`` still comes from one sequence on the coordinator, so it stays unique.

Foreign keys are kept only between co-located distributed tables (``labels`` and
``review_leases`` to ``galaxies``) and among the coordinator's tables. The others are
dropped: a coordinator table may not reference a distributed one, and a reference table that
any key points to may not be written in a transaction that has read a distributed table in
parallel (Citus would have to run every statement over one connection per node); galdb writes
``models``, ``tasks`` and ``head_versions`` in exactly such transactions (register a model
after reading galaxies, switch a head version after writing its predictions). galdb never
deletes surveys, releases, models or tasks; a superseded kNN graph's rows are deleted
explicitly (:mod:`galdb.propagate.graph`) instead of by the key's cascade.

What else Citus refuses, and how galdb avoids it (the same statements run on one server):
``now()`` in an upsert's ``DO UPDATE`` (``EXCLUDED`` carries the value instead), a distributed
table joined directly with a temporary one (materialized CTEs; label import), a reference
table's UPDATE reading a distributed table (the count is read first; kNN graphs), an SQL
function reading a distributed table with parameters (``effective_labels_of``'s body is run
as a statement on Citus: :func:`galdb.labels.store.effective_labels`), and a LATERAL
``ORDER BY … LIMIT`` subquery per query vector (``nearest_vectors`` runs one statement per
vector since migration 0012).

HNSW indexes are created per shard by Citus when galdb creates them on the distributed
table, and a kNN query (``ORDER BY distance LIMIT k``, the vector a parameter) runs on every
shard's index with the LIMIT pushed down and is merged on the coordinator. Session settings
for pgvector (``SET LOCAL hnsw.ef_search``) reach the workers because the database is set to
``citus.propagate_set_commands = 'local'``. galdb's owner connections do not ``SET ROLE
galdb_owner`` on Citus: Citus connects to the workers as the current role, and that group
role may not log in (:func:`galdb.db.connect.connect`).

The kNN graph is built on Citus through ``nearest_vectors`` (:mod:`galdb.propagate.graph`),
and extended in place when embeddings were added (its old rows locked one statement each,
since Citus refuses a multi-shard ``FOR UPDATE``). The review queue's
``lease_review_items`` locks and leases one galaxy per statement (migration 0014), which
Citus routes to its shard; being ``SECURITY DEFINER`` (reviewers lease through it without
rights on the galaxies) it runs as its owner, and Citus connects to the workers as that role,
so on Citus its owner is the login role that ran ``db init --citus`` rather than the
``galdb_owner`` group, which may not log in.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from galdb.errors import GaldbError

ANCHOR = "galdb.galaxies"
REFERENCE = ("surveys", "releases", "models", "tasks", "head_versions", "knn_graphs")
DISTRIBUTED = ("galaxies", "embeddings", "labels", "head_labels", "knn_neighbours", "review_leases")
CITUS_TABLES = (*REFERENCE, *DISTRIBUTED)
PREDICTIONS_SCHEMA = "galdb_predictions"

# (table, constraint to drop, replacement DDL or None): what Citus refuses, see the docstring.
REFUSED = (
    (
        "galaxies",
        "galaxies_release_source_key",
        "CREATE INDEX IF NOT EXISTS galaxies_release_source_idx "
        "ON galdb.galaxies (release_id, source_id)",
    ),
    (
        "labels",
        "labels_pkey",
        "ALTER TABLE galdb.labels ADD CONSTRAINT labels_pkey PRIMARY KEY (label_id, galaxy_id)",
    ),
)


def has_citus(conn: psycopg.Connection) -> bool:
    """Whether the Citus extension is created in galdb's database."""
    return conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'citus'").fetchone() is not None


def is_galdb_distributed(conn: psycopg.Connection) -> bool:
    """Whether galdb's tables were distributed (``db init --citus`` ran on this database)."""
    return has_citus(conn) and _kind(conn, ANCHOR) == "distributed"


def _kind(conn: psycopg.Connection, table: str) -> str | None:
    """Citus's kind of a table: 'distributed', 'reference', 'local' or None (not in Citus)."""
    row = conn.execute(
        "SELECT partmethod, repmodel FROM pg_dist_partition WHERE logicalrelid = to_regclass(%s)",
        (table,),
    ).fetchone()
    if row is None:
        return None
    method, replication = row
    if method == "h":
        return "distributed"
    return "reference" if replication == "t" else "local"


def _convertible(conn: psycopg.Connection, table: str) -> bool:
    """Not yet a distributed or reference table. Citus itself makes a table that references
    a reference table a coordinator-only "local" table, which can still be converted."""
    return _kind(conn, table) in (None, "local")


def _has_constraint(conn: psycopg.Connection, table: str, name: str) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM pg_constraint WHERE conrelid = %s::regclass AND conname = %s",
            (f"galdb.{table}", name),
        ).fetchone()
        is not None
    )


def _drop(conn: psycopg.Connection, table: str, name: str) -> None:
    conn.execute(
        sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
            sql.Identifier("galdb", table), sql.Identifier(name)
        )
    )


def distribute(conn: psycopg.Connection, shards: int | None = None) -> list[str]:
    """Make galdb's tables Citus tables (see the module docstring); return what was done.

    Needs the database owner's connection with ``citus`` created; runs in one transaction
    (all or nothing) and commits. Idempotent. ``shards``: how many shards the galaxies (and
    every table co-located with them) get when first distributed (default: the server's
    ``citus.shard_count``, 32 unless set); a few per worker core leaves room to add workers.
    """
    with conn.transaction():
        done = _distribute(conn, shards)
    return done


def _distribute(conn: psycopg.Connection, shards: int | None) -> list[str]:
    if not has_citus(conn):
        raise GaldbError(
            "the database has no Citus extension: a superuser must run CREATE EXTENSION citus "
            "(with shared_preload_libraries = 'citus') on the coordinator and every worker, "
            "and add the workers (SELECT citus_add_node(host, port))"
        )
    done: list[str] = []
    database = conn.execute("SELECT current_database()").fetchone()[0]
    conn.execute(
        sql.SQL("ALTER DATABASE {} SET citus.propagate_set_commands = 'local'").format(
            sql.Identifier(database)
        )
    )
    conn.execute("SET citus.propagate_set_commands = 'local'")
    done += _definers_that_log_in(conn)  # first: Citus refuses it after parallel work
    for table, constraint, replacement in REFUSED:
        if _convertible(conn, f"galdb.{table}") and _has_constraint(conn, table, constraint):
            _drop(conn, table, constraint)
            conn.execute(replacement)
            done.append(f"{table}: {constraint} replaced")
    again = []  # foreign keys between distributed tables: made again once both are
    for table, target, name, definition in _foreign_keys(conn):
        if table not in CITUS_TABLES and target not in CITUS_TABLES:
            continue
        _drop(conn, table, name)
        if table in DISTRIBUTED and target in DISTRIBUTED:
            again.append((table, name, definition))
        else:
            done.append(f"{table}: {name} dropped")
    for table in REFERENCE:
        if _convertible(conn, f"galdb.{table}"):
            conn.execute("SELECT create_reference_table(%s)", (f"galdb.{table}",))
            done.append(f"{table}: reference table")
    if _convertible(conn, ANCHOR):
        conn.execute(
            "SELECT create_distributed_table(%s, 'galaxy_id', colocate_with => 'none', "
            "shard_count => coalesce(%s, current_setting('citus.shard_count')::int))",
            (ANCHOR, shards),
        )
        done.append("galaxies: distributed on galaxy_id")
    for table in DISTRIBUTED:
        if distribute_like_galaxies(conn, f"galdb.{table}"):
            done.append(f"{table}: distributed on galaxy_id")
    for table, name, definition in again:
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                sql.Identifier("galdb", table), sql.Identifier(name), sql.SQL(definition)
            )
        )
    for (name,) in conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind = 'r' ORDER BY 1",
        (PREDICTIONS_SCHEMA,),
    ).fetchall():
        if distribute_like_galaxies(conn, f"{PREDICTIONS_SCHEMA}.{name}"):
            done.append(f"{PREDICTIONS_SCHEMA}.{name}: distributed on galaxy_id")
    return done


def _definers_that_log_in(conn: psycopg.Connection) -> list[str]:
    """Give galdb's SECURITY DEFINER functions to the role running this (one that logs in).

    Such a function runs as its owner, and Citus opens its connections to the workers as
    that role; the owner group ``galdb_owner`` may not log in. Run again after every
    ``db migrate`` (``db init --citus`` is), since a revision gives its objects to the group.
    """
    rows = conn.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_roles r ON r.oid = p.proowner "
        "WHERE n.nspname = 'galdb' AND p.prosecdef AND NOT r.rolcanlogin ORDER BY 1"
    ).fetchall()
    for (function,) in rows:
        conn.execute(sql.SQL("ALTER FUNCTION {} OWNER TO SESSION_USER").format(sql.SQL(function)))
    return [f"{function}: owned by the login role (SECURITY DEFINER)" for (function,) in rows]


def _foreign_keys(conn: psycopg.Connection) -> list[tuple[str, str, str, str]]:
    """(table, referenced table, constraint, definition) of the foreign keys between galdb's
    tables of which the referencing table is not converted yet."""
    rows = conn.execute(
        "SELECT t.relname, r.relname, c.conname, pg_get_constraintdef(c.oid) "
        "FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
        "JOIN pg_class r ON r.oid = c.confrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE c.contype = 'f' AND n.nspname = 'galdb' AND r.relnamespace = n.oid "
        "AND c.conrelid <> c.confrelid ORDER BY 1, 3"
    ).fetchall()
    return [row for row in rows if _convertible(conn, f"galdb.{row[0]}")]


def distribute_like_galaxies(conn: psycopg.Connection, table: str) -> bool:
    """Distribute ``table`` on ``galaxy_id``, co-located with the galaxies, if galdb runs on
    Citus and it is not distributed yet; return whether it was distributed now.

    A no-op on a single server, so code that creates tables keyed by galaxy at run time (a
    head version's predictions) calls it unconditionally.
    """
    if not has_citus(conn) or not _convertible(conn, table):
        return False
    if _kind(conn, ANCHOR) != "distributed":
        return False  # galdb itself is not distributed (no db init --citus)
    conn.execute(
        "SELECT create_distributed_table(%s, 'galaxy_id', colocate_with => %s)", (table, ANCHOR)
    )
    return True
