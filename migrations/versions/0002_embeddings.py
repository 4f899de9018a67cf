"""Embeddings: the model registry and one halfvec partition per model; similarity functions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from galdb.db.migrate import run_sql

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

# Frozen copy of galdb/sql/similarity.sql at commit 366046b; never edit (see galdb.db.migrate).
SIMILARITY = """\
-- Similarity search over galdb.embeddings (cosine distance, HNSW per model partition).
--
-- Each model's vectors live in galdb.embeddings_m<model_id>, indexed on
-- (embedding::halfvec(<dim>)); the functions below build that exact expression so the index
-- is used. Set hnsw.ef_search (default 40) to trade speed for recall.

CREATE OR REPLACE FUNCTION galdb.resolve_model(model text)
RETURNS galdb.models
LANGUAGE plpgsql STABLE AS $$
DECLARE m galdb.models;
BEGIN
    IF model IS NULL THEN
        SELECT * INTO m FROM galdb.models ORDER BY model_id DESC LIMIT 1;
    ELSIF model ~ '^[0-9]+$' THEN
        SELECT * INTO m FROM galdb.models WHERE model_id = model::integer;
    ELSE
        SELECT * INTO m FROM galdb.models WHERE spec = model ORDER BY model_id DESC LIMIT 1;
    END IF;
    IF m.model_id IS NULL THEN
        RAISE EXCEPTION 'no registered model %', coalesce(model, '(any)')
            USING ERRCODE = 'undefined_object',
                  HINT = 'run galdb embed --model SPEC first; see galdb.models';
    END IF;
    RETURN m;
END
$$;
COMMENT ON FUNCTION galdb.resolve_model IS
    'A model row by id, by spec (newest weights) or, given NULL, the newest model.';

CREATE OR REPLACE FUNCTION galdb.similar(query_galaxy bigint, k integer DEFAULT 10,
                                         model text DEFAULT NULL)
RETURNS TABLE(galaxy_id bigint, distance double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    m galdb.models := galdb.resolve_model(model);
    q halfvec;
BEGIN
    EXECUTE format('SELECT embedding FROM galdb.embeddings_m%s WHERE galaxy_id = $1', m.model_id)
        INTO q USING query_galaxy;
    IF q IS NULL THEN
        RAISE EXCEPTION 'galaxy % has no embedding for model %', query_galaxy, m.spec
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN QUERY
        SELECT n.galaxy_id, n.distance
        FROM galdb.nearest_vectors(ARRAY[q], k, m.model_id::text) AS n;
END
$$;
COMMENT ON FUNCTION galdb.similar IS
    'The k galaxies most similar to one galaxy (itself first), cosine distance, one model.';

CREATE OR REPLACE FUNCTION galdb.similar_many(query_galaxies bigint[], k integer DEFAULT 10,
                                              model text DEFAULT NULL)
RETURNS TABLE(query_id bigint, galaxy_id bigint, distance double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    m galdb.models := galdb.resolve_model(model);
    ids bigint[];
    vectors halfvec[];
BEGIN
    EXECUTE format(
        'SELECT array_agg(galaxy_id ORDER BY galaxy_id), array_agg(embedding ORDER BY galaxy_id)
           FROM galdb.embeddings_m%s WHERE galaxy_id = ANY($1)', m.model_id)
        INTO ids, vectors USING query_galaxies;
    RETURN QUERY
        SELECT ids[n.query_index], n.galaxy_id, n.distance
        FROM galdb.nearest_vectors(vectors, k, m.model_id::text) AS n;
END
$$;
COMMENT ON FUNCTION galdb.similar_many IS
    'Neighbours of many galaxies in one statement: (query_id, galaxy_id, distance).';

CREATE OR REPLACE FUNCTION galdb.nearest_vectors(queries halfvec[], k integer DEFAULT 10,
                                                 model text DEFAULT NULL)
RETURNS TABLE(query_index integer, galaxy_id bigint, distance double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE m galdb.models := galdb.resolve_model(model);
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT q.i::integer, n.galaxy_id, n.distance
           FROM unnest($1) WITH ORDINALITY AS q(v, i)
          CROSS JOIN LATERAL (
                SELECT e.galaxy_id,
                       (e.embedding::halfvec(%1$s) <=> q.v::halfvec(%1$s))::float8 AS distance
                  FROM galdb.embeddings_m%2$s AS e
                 ORDER BY e.embedding::halfvec(%1$s) <=> q.v::halfvec(%1$s)
                 LIMIT $2) AS n
          ORDER BY q.i, n.distance',
        m.embedding_dim, m.model_id) USING queries, k;
END
$$;
COMMENT ON FUNCTION galdb.nearest_vectors IS
    'Neighbours of many query vectors (1-based query_index) in one statement.';
"""


def upgrade() -> None:
    for script in (TABLES, SIMILARITY):
        run_sql(script)
    run_sql("GRANT SELECT ON ALL TABLES IN SCHEMA galdb TO galdb_reader")


def downgrade() -> None:
    run_sql("DROP TABLE galdb.embeddings CASCADE; DROP TABLE galdb.models CASCADE")
