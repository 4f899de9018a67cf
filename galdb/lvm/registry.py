"""The model registry (``galdb.models``) and each model's embeddings partition and index.

Invariants: a (spec, weights, preprocessing) triple is registered once (same weights, other
preprocessing: other vectors, another model); model ``m`` stores its vectors in
``galdb.embeddings_m<m>``, whose HNSW index ``embeddings_m<m>_hnsw`` is on
``embedding::halfvec(<dim>)`` with cosine distance. The index is built after a bulk embed
(faster than growing it row by row) and then maintained by PostgreSQL.
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
    exists = conn.execute(
        "SELECT 1 FROM pg_indexes WHERE schemaname = 'galdb' AND indexname = %s", (record.index,)
    ).fetchone()
    if exists:
        return False
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
