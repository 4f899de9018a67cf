"""Foundation: surveys, releases, ingest runs and files, galaxies, quarantine; cone search.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from galdb.db.migrate import run_sql, sql_file

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE SCHEMA IF NOT EXISTS galdb;

CREATE TABLE galdb.surveys (
    survey_id   serial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE galdb.releases (
    release_id  serial PRIMARY KEY,
    survey_id   integer NOT NULL REFERENCES galdb.surveys,
    name        text NOT NULL UNIQUE,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE galdb.ingest_runs (
    run_id        bigserial PRIMARY KEY,
    release_id    integer NOT NULL REFERENCES galdb.releases,
    source        text NOT NULL,
    format        text NOT NULL,
    options       jsonb NOT NULL DEFAULT '{}',
    status        text NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'completed', 'failed', 'interrupted')),
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    n_files       bigint NOT NULL DEFAULT 0,
    n_inserted    bigint NOT NULL DEFAULT 0,
    n_present     bigint NOT NULL DEFAULT 0,
    n_quarantined bigint NOT NULL DEFAULT 0,
    message       text
);

-- One row per input file of a release: its checksum and how far ingest got, for resuming.
CREATE TABLE galdb.ingest_files (
    release_id  integer NOT NULL REFERENCES galdb.releases,
    path        text NOT NULL,
    sha256      text NOT NULL,
    size_bytes  bigint NOT NULL,
    rows_done   bigint NOT NULL DEFAULT 0,
    completed   boolean NOT NULL DEFAULT false,
    run_id      bigint REFERENCES galdb.ingest_runs,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (release_id, path, sha256)
);

-- Declination zone of a position; the spatial index key of galdb.galaxies (see cone_search.sql).
CREATE FUNCTION galdb.zone_height() RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT 0.05::float8';
CREATE FUNCTION galdb.zone_of(declination double precision) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS 'SELECT floor((declination + 90.0) / galdb.zone_height())::integer';

CREATE TABLE galdb.galaxies (
    galaxy_id     bigserial PRIMARY KEY,
    release_id    integer NOT NULL REFERENCES galdb.releases,
    source_id     text COLLATE "C" NOT NULL,  -- byte order: ids are not prose, and it is faster
    ra            double precision CHECK (ra >= 0 AND ra < 360),
    dec           double precision CHECK (dec >= -90 AND dec <= 90),
    -- zone_of(dec) written out: a function call per row would slow COPY by a tenth.
    zone          integer GENERATED ALWAYS AS (floor((dec + 90.0) / 0.05)::integer) STORED,
    pixel_uri     text,
    pixel_member  text,
    pixel_index   bigint,
    bands         text,
    pixel_scale   real,
    shape         integer[],
    props         jsonb NOT NULL DEFAULT '{}',
    ingest_run_id bigint,  -- provenance; no foreign key, whose per-row check slows COPY
    CONSTRAINT galaxies_release_source_key UNIQUE (release_id, source_id),
    CHECK ((ra IS NULL) = (dec IS NULL))
);
CREATE INDEX galaxies_zone_ra_idx ON galdb.galaxies (zone, ra);

CREATE TABLE galdb.quarantine (
    quarantine_id bigserial PRIMARY KEY,
    run_id        bigint NOT NULL REFERENCES galdb.ingest_runs,
    release_id    integer NOT NULL REFERENCES galdb.releases,
    source        text NOT NULL,
    item          text NOT NULL DEFAULT '',
    code          text NOT NULL,
    reason        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quarantine_run_idx ON galdb.quarantine (run_id);
"""

# A role that can log in and read the galdb schema, nothing else; `galdb sql` runs as it.
READER = """
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'galdb_reader') THEN
        CREATE ROLE galdb_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
END $$;
GRANT USAGE ON SCHEMA galdb TO galdb_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA galdb TO galdb_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA galdb GRANT SELECT ON TABLES TO galdb_reader;
"""


def upgrade() -> None:
    for script in (TABLES, sql_file("cone_search.sql"), sql_file("views.sql"), READER):
        run_sql(script)


def downgrade() -> None:
    run_sql("DROP SCHEMA galdb CASCADE")
