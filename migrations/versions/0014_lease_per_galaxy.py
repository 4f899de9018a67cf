"""lease_review_items leases one candidate galaxy at a time (PL/pgSQL), so it runs on Citus.

What it does is unchanged (0005): up to n of the candidates, in their order, are leased to a
reviewer's session; a galaxy whose row another claim holds is passed over without waiting
(``FOR NO KEY UPDATE SKIP LOCKED``), one leased to another session until later is never
taken, and with ``p_undecided_only`` a galaxy decided since the candidates were chosen
(``review_decided_set``) is dropped. It returns the leased galaxy ids in candidate order.

``review_decided_set`` (the rule of what a reviewer's queue leaves out) keeps its rule and
gains an optional list of galaxies to ask about; it is PL/pgSQL now.

Why: on Citus (``galdb db init --citus``) the 0005 statement is refused. Citus refuses a
volatile function (``clock_timestamp()``) in an upsert's ``DO UPDATE`` and runs ``SELECT … FOR
UPDATE`` on one shard at a time. Here each galaxy is locked by its own single-row statement
(routed to its shard), then one statement checks that no other session holds an unexpired
lease, a later one that the galaxy is not decided (a decision and the release of its lease
commit together, so one of the two sees it; while the row is locked nobody else can lease it),
and the upsert writes the lease with the time read into a variable (a constant to Citus). The
decided check asks about one galaxy (index lookups), not the whole set. The old SQL
``review_decided_set`` was inlined by the planner before Citus saw it, and its coordinator-
only table was then sent to a worker; PL/pgSQL runs its statements on the coordinator with the
values bound.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""

from galdb.db.migrate import run_sql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

UP = """
-- The rule of 0005, unchanged, with an optional list of galaxies to ask about; PL/pgSQL, so
-- that Citus plans its statements with the values bound (it refuses an SQL function reading
-- a distributed table with parameters). STABLE: both parts read the caller's snapshot.
DROP FUNCTION galdb.review_decided_set(integer, text);
CREATE FUNCTION galdb.review_decided_set(p_task_id integer, p_reviewer text,
                                         p_galaxies bigint[] DEFAULT NULL)
RETURNS SETOF bigint LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
        SELECT h.galaxy_id FROM galdb.labels h
        WHERE h.task_id = p_task_id AND h.source = 'human'
          AND (p_galaxies IS NULL OR h.galaxy_id = ANY(p_galaxies));
    RETURN QUERY
        SELECT d.galaxy_id FROM galdb.review_decisions d
        WHERE d.task_id = p_task_id
          AND (d.action = 'flag' OR (d.action = 'skip' AND d.reviewer = p_reviewer))
          AND (p_galaxies IS NULL OR d.galaxy_id = ANY(p_galaxies))
          AND NOT EXISTS (SELECT 1 FROM galdb.review_decisions u WHERE u.undoes = d.decision_id);
END $$;
ALTER FUNCTION galdb.review_decided_set(integer, text, bigint[]) OWNER TO galdb_owner;

CREATE OR REPLACE FUNCTION galdb.lease_review_items(
    p_task_id integer, p_reviewer text, p_session text, p_candidates bigint[], p_n integer,
    p_seconds double precision, p_undecided_only boolean
) RETURNS SETOF bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    galaxy bigint;
    leased bigint;
    t timestamptz;
    taken integer := 0;
BEGIN
    FOR galaxy IN SELECT c.g FROM unnest(p_candidates) WITH ORDINALITY AS c(g, ord)
                  ORDER BY c.ord LOOP
        EXIT WHEN taken >= p_n;
        PERFORM 1 FROM galdb.galaxies WHERE galaxy_id = galaxy FOR NO KEY UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;  -- no such galaxy, or another claim holds it right now
        t := clock_timestamp();
        -- The lease first, then the decision, each in a later snapshot: a decision and the
        -- release of its lease commit together, so one of the two checks sees it.
        CONTINUE WHEN EXISTS (
            SELECT 1 FROM galdb.review_leases o
            WHERE o.task_id = p_task_id AND o.galaxy_id = galaxy
              AND o.expires_at > t AND o.session <> p_session);
        CONTINUE WHEN p_undecided_only AND EXISTS (
            SELECT 1 FROM galdb.review_decided_set(p_task_id, p_reviewer, ARRAY[galaxy]));
        INSERT INTO galdb.review_leases AS l
            (task_id, galaxy_id, reviewer, session, leased_at, expires_at)
        VALUES (p_task_id, galaxy, p_reviewer, p_session, t,
                t + make_interval(secs => p_seconds))
        ON CONFLICT (task_id, galaxy_id) DO UPDATE
            SET reviewer = EXCLUDED.reviewer, session = EXCLUDED.session,
                leased_at = EXCLUDED.leased_at, expires_at = EXCLUDED.expires_at
            WHERE l.expires_at <= EXCLUDED.leased_at OR l.session = EXCLUDED.session
        RETURNING l.galaxy_id INTO leased;
        IF FOUND THEN
            taken := taken + 1;
            RETURN NEXT leased;
        END IF;
    END LOOP;
END $$;
ALTER FUNCTION galdb.lease_review_items(integer, text, text, bigint[], integer,
    double precision, boolean) OWNER TO galdb_owner;
REVOKE ALL ON FUNCTION galdb.lease_review_items FROM PUBLIC;
GRANT EXECUTE ON FUNCTION galdb.lease_review_items TO galdb_reviewer;
"""

# 0005's statement, as it was (a frozen copy: migrations never read code that changes).
DOWN = """
DROP FUNCTION galdb.lease_review_items(integer, text, text, bigint[], integer,
    double precision, boolean);
DROP FUNCTION galdb.review_decided_set(integer, text, bigint[]);
CREATE FUNCTION galdb.review_decided_set(p_task_id integer, p_reviewer text)
RETURNS SETOF bigint LANGUAGE sql STABLE AS $$
    SELECT h.galaxy_id FROM galdb.labels h WHERE h.task_id = p_task_id AND h.source = 'human'
    UNION ALL
    SELECT d.galaxy_id FROM galdb.review_decisions d
    WHERE d.task_id = p_task_id
      AND (d.action = 'flag' OR (d.action = 'skip' AND d.reviewer = p_reviewer))
      AND NOT EXISTS (SELECT 1 FROM galdb.review_decisions u WHERE u.undoes = d.decision_id)
$$;
ALTER FUNCTION galdb.review_decided_set(integer, text) OWNER TO galdb_owner;
CREATE FUNCTION galdb.lease_review_items(
    p_task_id integer, p_reviewer text, p_session text, p_candidates bigint[], p_n integer,
    p_seconds double precision, p_undecided_only boolean
) RETURNS SETOF bigint LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    WITH locked AS (
        SELECT g.galaxy_id, c.ord
        FROM unnest(p_candidates) WITH ORDINALITY AS c(galaxy_id, ord)
        JOIN galdb.galaxies g ON g.galaxy_id = c.galaxy_id
        WHERE NOT EXISTS (
            SELECT 1 FROM galdb.review_leases l
            WHERE l.task_id = p_task_id AND l.galaxy_id = c.galaxy_id
              AND l.expires_at > clock_timestamp() AND l.session <> p_session)
          AND NOT (p_undecided_only AND c.galaxy_id IN (
                   SELECT galdb.review_decided_set(p_task_id, p_reviewer)))
        ORDER BY c.ord
        LIMIT p_n
        FOR NO KEY UPDATE OF g SKIP LOCKED
    )
    INSERT INTO galdb.review_leases AS l (task_id, galaxy_id, reviewer, session, expires_at)
    SELECT p_task_id, galaxy_id, p_reviewer, p_session,
           clock_timestamp() + make_interval(secs => p_seconds)
    FROM locked ORDER BY ord
    ON CONFLICT (task_id, galaxy_id) DO UPDATE
        SET reviewer = EXCLUDED.reviewer, session = EXCLUDED.session,
            leased_at = clock_timestamp(), expires_at = EXCLUDED.expires_at
        WHERE l.expires_at <= clock_timestamp() OR l.session = EXCLUDED.session
    RETURNING galaxy_id
$$;
ALTER FUNCTION galdb.lease_review_items(integer, text, text, bigint[], integer,
    double precision, boolean) OWNER TO galdb_owner;
REVOKE ALL ON FUNCTION galdb.lease_review_items FROM PUBLIC;
GRANT EXECUTE ON FUNCTION galdb.lease_review_items TO galdb_reviewer;
"""


def upgrade() -> None:
    run_sql(UP)


def downgrade() -> None:
    run_sql(DOWN)
