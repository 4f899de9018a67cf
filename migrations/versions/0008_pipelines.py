"""Pipelines: what every newly ingested release gets (embed → predict → graph → propagate),
run as jobs; a release's stages are found by ``jobs.payload->>'release'``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from galdb.db.migrate import run_sql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UP = """
-- One row per `galdb pipeline set`; a cleared or replaced pipeline stays (inactive), so the
-- jobs that name it can still read what they were asked to do.
CREATE TABLE galdb.pipelines (
    pipeline_id serial PRIMARY KEY,
    model_id    integer NOT NULL REFERENCES galdb.models ON DELETE CASCADE,
    -- tasks to predict; empty: every task whose current version uses the model
    tasks       text[] NOT NULL DEFAULT '{}',
    -- tasks whose labels are propagated over the model's kNN graph
    propagate   text[] NOT NULL DEFAULT '{}',
    k           integer NOT NULL DEFAULT 15 CHECK (k BETWEEN 1 AND 200),
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX pipelines_active_model_idx ON galdb.pipelines (model_id) WHERE active;
-- `galdb release status R`: the pipeline jobs of one release
CREATE INDEX jobs_release_idx ON galdb.jobs ((payload->>'release'))
    WHERE payload ? 'release';
"""

DOWN = """
DROP INDEX galdb.jobs_release_idx;
DROP TABLE galdb.pipelines;
"""


def upgrade() -> None:
    run_sql(UP)


def downgrade() -> None:
    run_sql(DOWN)
