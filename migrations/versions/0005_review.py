"""Review: append-only decisions, leases, a retrain threshold per task, and the job queue.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from galdb.db.migrate import run_sql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLES = """
-- Corrections (decisions whose answer differs from the prediction shown) against a task's
-- current version that make the decision crossing it enqueue a retrain job.
ALTER TABLE galdb.tasks ADD COLUMN retrain_threshold integer NOT NULL DEFAULT 20
    CHECK (retrain_threshold >= 1);

-- Every decision a reviewer takes, kept forever: nothing updates or deletes a row (a trigger
-- refuses it for every role, and the reviewer role has no such privilege either). An undo
-- is a new row naming the decision it undoes.
CREATE TABLE galdb.review_decisions (
    decision_id      bigserial PRIMARY KEY,
    task_id          integer NOT NULL REFERENCES galdb.tasks,
    galaxy_id        bigint NOT NULL REFERENCES galdb.galaxies,
    reviewer         text NOT NULL CHECK (reviewer <> '' AND length(reviewer) <= 100),
    session          text NOT NULL DEFAULT '',
    decided_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    action           text NOT NULL CHECK (action IN ('label', 'accept', 'flag', 'skip', 'undo')),
    answer_class     text,
    answer_value     double precision,
    head_version     integer REFERENCES galdb.head_versions,  -- the version shown
    shown_class      text,                                    -- its prediction, as shown
    shown_value      double precision,
    shown_confidence real,
    -- +1 a label that corrects the prediction shown, -1 the undo of one, else 0
    correction       smallint NOT NULL DEFAULT 0 CHECK (correction BETWEEN -1 AND 1),
    flag_reason      text CHECK (flag_reason IN ('artefact', 'interesting', 'unsure')),
    note             text NOT NULL DEFAULT '' CHECK (length(note) <= 2000),
    undoes           bigint REFERENCES galdb.review_decisions,
    origin           text NOT NULL DEFAULT '',
    CHECK ((action = 'undo') = (undoes IS NOT NULL)),
    CHECK ((action = 'flag') = (flag_reason IS NOT NULL)),
    CHECK (answer_class IS NULL OR answer_value IS NULL)
);
CREATE INDEX review_decisions_galaxy_idx ON galdb.review_decisions (task_id, galaxy_id);
CREATE INDEX review_decisions_version_idx ON galdb.review_decisions (task_id, head_version)
    WHERE correction <> 0;
CREATE INDEX review_decisions_reviewer_idx ON galdb.review_decisions (reviewer, decision_id);
CREATE INDEX review_decisions_undoes_idx ON galdb.review_decisions (undoes)
    WHERE undoes IS NOT NULL;
CREATE INDEX review_decisions_flag_skip_idx ON galdb.review_decisions (task_id, action)
    WHERE action IN ('flag', 'skip');

CREATE FUNCTION galdb.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'galdb.% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER review_decisions_append_only BEFORE UPDATE OR DELETE ON galdb.review_decisions
    FOR EACH ROW EXECUTE FUNCTION galdb.refuse_change();
CREATE TRIGGER review_decisions_no_truncate BEFORE TRUNCATE ON galdb.review_decisions
    FOR EACH STATEMENT EXECUTE FUNCTION galdb.refuse_change();

-- Which reviewer holds which galaxy of a task's queue, until when. A lease past its expiry
-- is free again; quitting deletes the session's leases.
CREATE TABLE galdb.review_leases (
    task_id    integer NOT NULL REFERENCES galdb.tasks ON DELETE CASCADE,
    galaxy_id  bigint NOT NULL REFERENCES galdb.galaxies ON DELETE CASCADE,
    reviewer   text NOT NULL,
    session    text NOT NULL,
    leased_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (task_id, galaxy_id)
);
CREATE INDEX review_leases_session_idx ON galdb.review_leases (session);

-- The galaxies decided for a task, as far as this reviewer's queue is concerned: those with a
-- human label, a flag that is not undone (anyone's), or this reviewer's own skip that is not
-- undone. The queue leaves them out (unless asked to redo them) with
-- `galaxy_id NOT IN (SELECT galdb.review_decided_set(...))`, which PostgreSQL computes once
-- and hashes, so walking the queue's index past decided galaxies costs a hash probe each.
CREATE FUNCTION galdb.review_decided_set(p_task_id integer, p_reviewer text)
RETURNS SETOF bigint LANGUAGE sql STABLE AS $$
    SELECT h.galaxy_id FROM galdb.labels h WHERE h.task_id = p_task_id AND h.source = 'human'
    UNION ALL
    SELECT d.galaxy_id FROM galdb.review_decisions d
    WHERE d.task_id = p_task_id
      AND (d.action = 'flag' OR (d.action = 'skip' AND d.reviewer = p_reviewer))
      AND NOT EXISTS (SELECT 1 FROM galdb.review_decisions u WHERE u.undoes = d.decision_id)
$$;

-- Lease up to n of the candidates (in their order) to a reviewer's session: the galaxies'
-- rows are locked FOR NO KEY UPDATE SKIP LOCKED, so concurrent claims take different
-- galaxies without waiting, and a galaxy leased to another session until later is never
-- taken. Candidates were chosen by an earlier statement; a galaxy decided since then (the
-- decision and the release of its lease commit together) is dropped here, so this
-- statement sees either the lease or the decision, never neither.
-- SECURITY DEFINER: reviewers may lease through it without any right on galaxies.
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

-- Background work: retraining heads now, ingest/embed/predict stages later. A job is
-- claimed with FOR UPDATE SKIP LOCKED; a running job whose heartbeat is older than the
-- worker's timeout is claimed again (its worker died). dedupe_key makes an enqueue
-- idempotent: e.g. one retrain per threshold crossing.
CREATE TABLE galdb.jobs (
    job_id       bigserial PRIMARY KEY,
    kind         text NOT NULL,
    payload      jsonb NOT NULL DEFAULT '{}',
    status       text NOT NULL DEFAULT 'queued'
                 CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    run_after    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz,
    worker       text,
    error        text,
    progress     jsonb NOT NULL DEFAULT '{}',  -- what a retried attempt can reuse
    result       jsonb,
    dedupe_key   text UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz
);
CREATE INDEX jobs_ready_idx ON galdb.jobs (run_after) WHERE status = 'queued';
CREATE INDEX jobs_running_idx ON galdb.jobs (heartbeat_at) WHERE status = 'running';

-- The role `galdb review` connects as: it reads, leases, labels as a human, records decisions
-- and enqueues jobs; it can never change or remove a decision.
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'galdb_reviewer') THEN
        CREATE ROLE galdb_reviewer LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
END $$;
GRANT USAGE ON SCHEMA galdb TO galdb_reviewer;
GRANT SELECT ON ALL TABLES IN SCHEMA galdb TO galdb_reviewer;
ALTER DEFAULT PRIVILEGES IN SCHEMA galdb GRANT SELECT ON TABLES TO galdb_reviewer;
GRANT INSERT ON galdb.review_decisions, galdb.jobs TO galdb_reviewer;
GRANT INSERT, UPDATE, DELETE ON galdb.labels, galdb.review_leases TO galdb_reviewer;
GRANT USAGE ON SEQUENCE galdb.review_decisions_decision_id_seq, galdb.jobs_job_id_seq,
    galdb.labels_label_id_seq TO galdb_reviewer;
REVOKE ALL ON FUNCTION galdb.lease_review_items FROM PUBLIC;
GRANT EXECUTE ON FUNCTION galdb.lease_review_items TO galdb_reviewer;
"""


def upgrade() -> None:
    run_sql(TABLES)
    # Other schemas that hold task views and predictions (0004) are readable by reviewers.
    run_sql(
        "DO $$ DECLARE s text; BEGIN FOR s IN SELECT nspname FROM pg_namespace "
        "WHERE nspname IN ('galdb_tasks', 'galdb_predictions') LOOP "
        "EXECUTE format('GRANT USAGE ON SCHEMA %I TO galdb_reviewer', s); "
        "EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO galdb_reviewer', s); "
        "EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES "
        "TO galdb_reviewer', s); END LOOP; END $$"
    )


def downgrade() -> None:
    run_sql(
        "DROP TABLE galdb.jobs, galdb.review_leases, galdb.review_decisions; "
        "DROP FUNCTION galdb.lease_review_items, galdb.review_decided_set, galdb.refuse_change; "
        "ALTER TABLE galdb.tasks DROP COLUMN retrain_threshold"
    )
