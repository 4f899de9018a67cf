"""Detections: trained detector versions, detection runs over directories of fields, each
run's table ``galdb_detection_runs.r<run_id>`` and per release a stable view
``galdb_detections.<release>`` switched atomically to its current run.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

from galdb.db.migrate import run_sql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

UP = """
CREATE SCHEMA galdb_detections;      -- one view per detection release, named as it
CREATE SCHEMA galdb_detection_runs;  -- one table per run: r<run_id>; nothing else
GRANT USAGE ON SCHEMA galdb_detections, galdb_detection_runs TO galdb_reader, galdb_reviewer;
-- run tables and views are made at run time by the owner group (0009)
ALTER DEFAULT PRIVILEGES FOR ROLE galdb_owner IN SCHEMA galdb_detections
    GRANT SELECT ON TABLES TO galdb_reader, galdb_reviewer;
ALTER DEFAULT PRIVILEGES FOR ROLE galdb_owner IN SCHEMA galdb_detection_runs
    GRANT SELECT ON TABLES TO galdb_reader, galdb_reviewer;

-- One row per `galdb detect train`: the LVM backbone it was fine-tuned from, how, on what,
-- and the whole network (backbone and head) with its score threshold.
CREATE TABLE galdb.detector_versions (
    version_id      serial PRIMARY KEY,
    model_id        integer NOT NULL REFERENCES galdb.models ON DELETE CASCADE,
    algorithm       text NOT NULL,
    hyperparameters jsonb NOT NULL DEFAULT '{}',
    training_fields text NOT NULL,   -- the fields directory trained on
    n_fields        integer NOT NULL CHECK (n_fields > 0),
    n_objects       integer NOT NULL CHECK (n_objects >= 0),
    threshold       real NOT NULL,
    metrics         jsonb NOT NULL DEFAULT '{}',
    parameters      bytea NOT NULL,
    train_seconds   real,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE galdb.detection_releases (
    release     text PRIMARY KEY CHECK (release ~ '^[a-z0-9][a-z0-9_.-]{0,40}$'),
    current_run integer,             -- NULL until a first run is complete
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per `galdb detect run`; its rows are built in r<run_id>_build, which takes the name
-- r<run_id> in the transaction that makes the run current.
CREATE TABLE galdb.detection_runs (
    run_id          serial PRIMARY KEY,
    release         text NOT NULL REFERENCES galdb.detection_releases ON DELETE CASCADE,
    version_id      integer NOT NULL REFERENCES galdb.detector_versions ON DELETE CASCADE,
    fields_dir      text NOT NULL,
    threshold       real NOT NULL,
    status          text NOT NULL DEFAULT 'building'
                    CHECK (status IN ('building', 'ready', 'failed')),
    n_fields        integer NOT NULL DEFAULT 0,
    n_detections    bigint NOT NULL DEFAULT 0,
    detections_table text,           -- galdb_detection_runs.r<run_id> once ready
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX detection_runs_release_idx ON galdb.detection_runs (release, run_id);
ALTER TABLE galdb.detection_releases ADD CONSTRAINT detection_releases_current_run_fkey
    FOREIGN KEY (current_run) REFERENCES galdb.detection_runs (run_id);
GRANT SELECT ON galdb.detector_versions, galdb.detection_releases, galdb.detection_runs
    TO galdb_reader, galdb_reviewer;
-- galdb's objects belong to the owner group (0009)
ALTER SCHEMA galdb_detections OWNER TO galdb_owner;
ALTER SCHEMA galdb_detection_runs OWNER TO galdb_owner;
ALTER TABLE galdb.detector_versions OWNER TO galdb_owner;
ALTER TABLE galdb.detection_releases OWNER TO galdb_owner;
ALTER TABLE galdb.detection_runs OWNER TO galdb_owner;
"""

DOWN = """
ALTER DEFAULT PRIVILEGES FOR ROLE galdb_owner IN SCHEMA galdb_detections
    REVOKE SELECT ON TABLES FROM galdb_reader, galdb_reviewer;
ALTER DEFAULT PRIVILEGES FOR ROLE galdb_owner IN SCHEMA galdb_detection_runs
    REVOKE SELECT ON TABLES FROM galdb_reader, galdb_reviewer;
DROP SCHEMA galdb_detections CASCADE;
DROP SCHEMA galdb_detection_runs CASCADE;
ALTER TABLE galdb.detection_releases DROP CONSTRAINT detection_releases_current_run_fkey;
DROP TABLE galdb.detection_runs;
DROP TABLE galdb.detection_releases;
DROP TABLE galdb.detector_versions;
"""


def upgrade() -> None:
    run_sql(UP)


def downgrade() -> None:
    run_sql(DOWN)
