"""nearest_vectors runs one kNN statement per query vector instead of one LATERAL join.

The results are the same (per query, the k nearest by cosine distance, 1-based query_index,
ordered by query then distance). The reason is Citus (``galdb db init --citus``): it does not
run a LATERAL subquery with ORDER BY … LIMIT over a distributed table, while a single
``ORDER BY distance LIMIT k`` statement with the vector as a parameter is pushed down to every
shard's HNSW index and merged on the coordinator. On one server each statement is the same
index scan the LATERAL join made. ``similar`` and ``similar_many`` call it, so they work on
Citus too.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from galdb.db.migrate import run_sql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UP = """
CREATE OR REPLACE FUNCTION galdb.nearest_vectors(queries halfvec[], k integer DEFAULT 10,
                                                 model text DEFAULT NULL)
RETURNS TABLE(query_index integer, galaxy_id bigint, distance double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    m galdb.models := galdb.resolve_model(model);
    knn text := format(
        'SELECT $3::integer, e.galaxy_id,
                (e.embedding::halfvec(%1$s) <=> $1::halfvec(%1$s))::float8
           FROM galdb.embeddings_m%2$s AS e
          ORDER BY e.embedding::halfvec(%1$s) <=> $1::halfvec(%1$s) LIMIT $2',
        m.embedding_dim, m.model_id);
    v halfvec;
    i integer := 0;
BEGIN
    FOREACH v IN ARRAY coalesce(queries, '{}') LOOP
        i := i + 1;
        RETURN QUERY EXECUTE knn USING v, k, i;
    END LOOP;
END
$$;
ALTER FUNCTION galdb.nearest_vectors(halfvec[], integer, text) OWNER TO galdb_owner;
COMMENT ON FUNCTION galdb.nearest_vectors IS
    'Neighbours of many query vectors (1-based query_index), one kNN statement per vector.';
"""

DOWN = """
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
    run_sql(UP)


def downgrade() -> None:
    run_sql(DOWN)
