"""The model registry (``galdb.models``) and each model's embeddings partition and index.

Invariants: a (spec, weights, preprocessing) triple is registered once (same weights, other
preprocessing: other vectors, another model); model ``m`` stores its vectors in
``galdb.embeddings_m<m>``, whose HNSW index ``embeddings_m<m>_hnsw`` is on
``embedding::halfvec(<dim>)`` with cosine distance. The index is built after a bulk embed
(faster than growing it row by row) and then maintained by PostgreSQL.

The ``galdb`` schema holds only galdb's own objects (user-named ones live in ``galdb_tasks``);
still, before taking a derived name, galdb checks that whatever holds it is the object it
expects, so a stray table or view there is reported rather than silently used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import psycopg
from psycopg import sql

from galdb.errors import GaldbError
from galdb.lvm.preprocess import Preprocessing
from galdb.lvm.specs import LoadedModel


@dataclass(frozen=True)
class ModelRecord:
    """One row of ``galdb.models``."""

    model_id: int
    spec: str
    embedding_dim: int

    @property
    def partition(self) -> str:
        return f"embeddings_m{self.model_id}"

    @property
    def index(self) -> str:
        return f"embeddings_m{self.model_id}_hnsw"


def register(conn: psycopg.Connection, loaded: LoadedModel) -> ModelRecord:
    """Register a loaded model (idempotent) and make sure its partition exists."""
    p = loaded.preprocessing
    row = conn.execute(
        "INSERT INTO galdb.models (spec, arch, weights_sha256, input_size, channels, "
        "preprocessing, embedding_dim) VALUES (%s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (spec, weights_sha256, preprocessing) DO UPDATE SET spec = EXCLUDED.spec "
        "RETURNING model_id, spec, embedding_dim",
        (
            loaded.spec,
            loaded.arch,
            loaded.weights_sha256,
            p.input_size,
            ",".join(p.channels),
            json.dumps(p.to_dict()),
            loaded.embedding_dim,
        ),
    ).fetchone()
    record = ModelRecord(*row)
    _check_partition(conn, record)
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS galdb.{} PARTITION OF galdb.embeddings FOR VALUES IN ({})"
        ).format(sql.Identifier(record.partition), sql.Literal(record.model_id))
    )
    conn.execute(
        sql.SQL("GRANT SELECT ON galdb.{} TO galdb_reader").format(sql.Identifier(record.partition))
    )
    conn.commit()
    return record


_KINDS = {
    "r": "a table",
    "p": "a partitioned table",
    "v": "a view",
    "m": "a materialized view",
    "i": "an index",
    "S": "a sequence",
    "f": "a foreign table",
    "c": "a composite type",
}


def _occupant(conn: psycopg.Connection, name: str) -> tuple | None:
    """(kind, parent, partition bound, indexed table) of the relation ``galdb.<name>``;
    parent and indexed table schema-qualified (regclass text would drop the schema)."""
    return conn.execute(
        "SELECT c.relkind::text, pn.nspname || '.' || p.relname, "
        "pg_get_expr(c.relpartbound, c.oid), tn.nspname || '.' || t.relname "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_inherits i ON i.inhrelid = c.oid "
        "LEFT JOIN pg_class p ON p.oid = i.inhparent "
        "LEFT JOIN pg_namespace pn ON pn.oid = p.relnamespace "
        "LEFT JOIN pg_index x ON x.indexrelid = c.oid "
        "LEFT JOIN pg_class t ON t.oid = x.indrelid "
        "LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace "
        "WHERE n.nspname = 'galdb' AND c.relname = %s",
        (name,),
    ).fetchone()


def _check_partition(conn: psycopg.Connection, record: ModelRecord) -> None:
    """Raise if ``galdb.embeddings_m<id>`` exists but is not that model's partition."""
    found = _occupant(conn, record.partition)
    if found is None:
        return
    kind, parent, bound, _ = found
    if (
        kind == "r"
        and parent == "galdb.embeddings"
        and bound == f"FOR VALUES IN ({record.model_id})"
    ):
        return
    what = _KINDS.get(kind, f"a relation of kind {kind!r}")
    if parent:
        what += f" ({bound or 'no bound'} of {parent})"
    raise GaldbError(
        f"galdb.{record.partition} exists but is {what}, not the partition of galdb.embeddings "
        f"for model {record.model_id} ({record.spec}); galdb will not store that model's "
        "vectors there: rename or drop that object"
    )


def lookup(conn: psycopg.Connection, model: str | None) -> ModelRecord:
    """A registered model by spec or id (newest weights for a spec; newest model if None)."""
    try:
        row = conn.execute(
            "SELECT model_id, spec, embedding_dim FROM galdb.resolve_model(%s)", (model,)
        ).fetchone()
    except psycopg.errors.UndefinedObject as exc:
        conn.rollback()
        raise GaldbError(
            f"no embeddings for model {model or '(any)'}: run `galdb embed --model SPEC` first"
        ) from exc
    return ModelRecord(*row)


def create_index_sql(record: ModelRecord, *, m: int = 16, ef_construction: int = 64) -> sql.SQL:
    """The CREATE INDEX statement of a model's HNSW index (shown by docs and tests)."""
    return sql.SQL(
        "CREATE INDEX IF NOT EXISTS {index} ON galdb.{table} USING hnsw "
        "((embedding::halfvec({dim})) halfvec_cosine_ops) WITH (m = {m}, ef_construction = {ef})"
    ).format(
        index=sql.Identifier(record.index),
        table=sql.Identifier(record.partition),
        dim=sql.Literal(record.embedding_dim),
        m=sql.Literal(m),
        ef=sql.Literal(ef_construction),
    )


def ensure_index(conn: psycopg.Connection, record: ModelRecord) -> bool:
    """Build the model's HNSW index if missing; return True if it was built now."""
    found = _occupant(conn, record.index)
    if found is not None:
        kind, _, _, table = found
        if kind == "i" and table == f"galdb.{record.partition}":
            return False
        raise GaldbError(
            f"galdb.{record.index} exists but is {_KINDS.get(kind, kind)}"
            f"{f' on {table}' if table else ''}, not the HNSW index of galdb.{record.partition}"
            f" (model {record.model_id}): rename or drop that object"
        )
    conn.execute("SET maintenance_work_mem = '1GB'")
    conn.execute(create_index_sql(record))
    conn.commit()
    return True


def preprocessing_of(conn: psycopg.Connection, record: ModelRecord) -> Preprocessing:
    """The preprocessing the model's vectors were made with."""
    prep = conn.execute(
        "SELECT preprocessing FROM galdb.models WHERE model_id = %s", (record.model_id,)
    ).fetchone()[0]
    return Preprocessing.from_dict(prep)


def load_registered(conn: psycopg.Connection, record: ModelRecord) -> LoadedModel:
    """Load a registered model as it was registered: same weights, same preprocessing."""
    from galdb.lvm.specs import load_model

    sha = conn.execute(
        "SELECT weights_sha256 FROM galdb.models WHERE model_id = %s", (record.model_id,)
    ).fetchone()[0]
    loaded = load_model(record.spec)
    if loaded.weights_sha256 != sha:
        raise GaldbError(
            f"{record.spec} now has other weights than its stored vectors "
            f"(model {record.model_id}); re-run galdb embed for it"
        )
    loaded.preprocessing = preprocessing_of(conn, record)
    return loaded
