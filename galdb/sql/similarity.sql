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
