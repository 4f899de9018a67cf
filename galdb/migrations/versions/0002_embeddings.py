"""Embeddings: the model registry and one halfvec partition per model; similarity functions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from galdb.db.migrate import run_sql, sql_file

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = """
CREATE TABLE galdb.models (
    model_id       serial PRIMARY KEY,
    spec           text NOT NULL,
    arch           text NOT NULL,
    weights_sha256 text NOT NULL,
    input_size     integer NOT NULL,
    channels       text NOT NULL,
    preprocessing  jsonb NOT NULL,
    embedding_dim  integer NOT NULL CHECK (embedding_dim BETWEEN 1 AND 4000),
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- the same weights with another preprocessing are another model (other vectors)
    UNIQUE (spec, weights_sha256, preprocessing)
);

-- Vectors of every model; one partition per model (galdb.embeddings_m<model_id>) holds
-- vectors of that model's dimension and its own HNSW index on embedding::halfvec(<dim>).
CREATE TABLE galdb.embeddings (
    model_id   integer NOT NULL,
    galaxy_id  bigint NOT NULL,
    embedding  halfvec NOT NULL,
    PRIMARY KEY (model_id, galaxy_id)
) PARTITION BY LIST (model_id);
"""


def upgrade() -> None:
    for script in (TABLES, sql_file("similarity.sql")):
        run_sql(script)
    run_sql("GRANT SELECT ON ALL TABLES IN SCHEMA galdb TO galdb_reader")


def downgrade() -> None:
    run_sql("DROP TABLE galdb.embeddings CASCADE; DROP TABLE galdb.models CASCADE")
