"""Foundation: surveys, releases, ingest runs and files, galaxies, quarantine; cone search.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from galdb.db.migrate import run_sql

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

-- Declination zone of a position; the spatial index key of galdb.galaxies (see CONE_SEARCH).
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

# Frozen copy of galdb/sql/cone_search.sql at commit 366046b; never edit (see galdb.db.migrate).
CONE_SEARCH = """\
-- Cone search on the zone index of galdb.galaxies.
--
-- The sky is cut into declination zones of galdb.zone_height() degrees; galaxies carry their
-- zone (a stored generated column) and a btree on (zone, ra) answers "zone = z AND ra BETWEEN a
-- AND b" with one index range scan per zone. A cone becomes a handful of such ranges (two per
-- zone where it crosses RA = 0/360, the whole circle where it contains a pole), and the exact
-- great-circle separation then filters the candidates. This is the Zones algorithm of Gray,
-- Szalay et al. (2006, MSR-TR-2006-52), chosen over HEALPix because it needs no extension and
-- the whole search is plain SQL that psql users can call.

CREATE OR REPLACE FUNCTION galdb.angular_separation(
    ra1 double precision, dec1 double precision, ra2 double precision, dec2 double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    -- Vincenty's formula: well conditioned at every separation (0 to 180 degrees).
    SELECT atan2d(
        sqrt(power(cosd(dec2) * sind(ra2 - ra1), 2)
             + power(cosd(dec1) * sind(dec2) - sind(dec1) * cosd(dec2) * cosd(ra2 - ra1), 2)),
        sind(dec1) * sind(dec2) + cosd(dec1) * cosd(dec2) * cosd(ra2 - ra1))
$$;
COMMENT ON FUNCTION galdb.angular_separation IS
    'Great-circle separation in degrees between two (ra, dec) positions in degrees (Vincenty).';

CREATE OR REPLACE FUNCTION galdb.cone_zone_ranges(
    ra0 double precision, dec0 double precision, radius_deg double precision)
RETURNS TABLE(zone integer, ra_lo double precision, ra_hi double precision)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE ROWS 8 AS $$
    WITH c AS (
        SELECT ra0 - 360.0 * floor(ra0 / 360.0) AS ra,
               -- widest RA offset of a small circle not containing a pole: sin a = sin r / cos d;
               -- a tiny margin keeps points on the boundary from being lost to rounding.
               CASE WHEN radius_deg >= 90 OR abs(dec0) + radius_deg >= 90 - 1e-9 THEN 180.0
                    ELSE least(180.0, asind(least(1.0, sind(radius_deg) / cosd(dec0)))
                                      * (1 + 1e-9) + 1e-9)
               END AS alpha,
               galdb.zone_of(greatest(dec0 - radius_deg - 1e-9, -90)) AS z_lo,
               galdb.zone_of(least(dec0 + radius_deg + 1e-9, 90)) AS z_hi
    ), intervals AS (
        SELECT 0.0::float8 AS lo, 360.0::float8 AS hi FROM c WHERE alpha >= 180
        UNION ALL
        SELECT greatest(ra - alpha, 0), least(ra + alpha, 360) FROM c WHERE alpha < 180
        UNION ALL  -- the part that wrapped below RA = 0
        SELECT ra - alpha + 360, 360 FROM c WHERE alpha < 180 AND ra - alpha < 0
        UNION ALL  -- the part that wrapped above RA = 360
        SELECT 0, ra + alpha - 360 FROM c WHERE alpha < 180 AND ra + alpha > 360
    )
    SELECT z, i.lo, i.hi FROM c, generate_series(c.z_lo, c.z_hi) AS z, intervals i
$$;
COMMENT ON FUNCTION galdb.cone_zone_ranges IS
    'The (zone, ra_lo, ra_hi) index ranges that cover a cone; used by galdb.cone_search.';

CREATE OR REPLACE FUNCTION galdb.cone_search(
    ra0 double precision, dec0 double precision, radius_deg double precision)
RETURNS TABLE(galaxy_id bigint, separation_deg double precision)
LANGUAGE plpgsql STABLE PARALLEL SAFE ROWS 100 AS $$
BEGIN
    IF ra0 IS NULL OR dec0 IS NULL OR radius_deg IS NULL
       OR dec0 < -90 OR dec0 > 90 OR radius_deg <= 0 OR radius_deg > 180
       OR ra0 = 'NaN' OR ra0 IN ('Infinity', '-Infinity') THEN
        RAISE EXCEPTION 'cone_search: need finite ra, dec in [-90, 90] and 0 < radius <= 180 deg'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
        SELECT g.galaxy_id, s.sep
        FROM galdb.cone_zone_ranges(ra0, dec0, radius_deg) AS z
        JOIN galdb.galaxies AS g ON g.zone = z.zone AND g.ra BETWEEN z.ra_lo AND z.ra_hi
        CROSS JOIN LATERAL (
            SELECT galdb.angular_separation(ra0, dec0, g.ra, g.dec) AS sep) AS s
        WHERE s.sep <= radius_deg
        ORDER BY s.sep, g.galaxy_id;
END
$$;
COMMENT ON FUNCTION galdb.cone_search IS
    'Galaxies within radius_deg of (ra0, dec0), nearest first, with the exact separation in degrees.';
"""  # noqa: E501

# Frozen copy of galdb/sql/views.sql at commit 366046b; never edit (see galdb.db.migrate).
VIEWS = """\
-- Views for SQL users: one row per galaxy with its release and survey names.

CREATE OR REPLACE VIEW galdb.catalog AS
SELECT g.galaxy_id, s.name AS survey, r.name AS release, g.source_id, g.ra, g.dec,
       g.bands, g.pixel_scale, g.shape, g.pixel_uri, g.pixel_member, g.pixel_index, g.props
FROM galdb.galaxies AS g
JOIN galdb.releases AS r USING (release_id)
JOIN galdb.surveys AS s USING (survey_id);
COMMENT ON VIEW galdb.catalog IS
    'Every galaxy with its survey and release names; catalog columns are in props (jsonb).';
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
    for script in (TABLES, CONE_SEARCH, VIEWS, READER):
        run_sql(script)


def downgrade() -> None:
    run_sql("DROP SCHEMA galdb CASCADE")
