"""Lineage between data releases of the same sky: each galaxy's match in an earlier release.

``galdb.galaxy_lineage`` has one row per galaxy that belongs to a lineage: ``previous_id``
is the galaxy it was matched to in the earlier release (NULL when it starts its own
lineage), ``matched_by`` says how (``key``: the same source id after its release prefix,
e.g. the same Legacy Surveys brickid/objid, with the positions agreeing; ``position``: the
nearest within the radius; ``new``: no match) and ``lineage_id`` is the galaxy_id of the
chain's earliest galaxy, so all releases' rows of one object are ``lineage_id = X``.
``galdb.lineage_matches`` records the match of each release (which earlier release, the
radius, how far it got, its counts), and ``galdb.lineage_candidates`` holds the pairs a
running match is still assigning (emptied when it ends). See ``galdb/ingest/lineage.py``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from galdb.db.migrate import run_sql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UP = """
CREATE TABLE galdb.galaxy_lineage (
    galaxy_id         bigint PRIMARY KEY REFERENCES galdb.galaxies ON DELETE CASCADE,
    -- the galaxy_id of the earliest galaxy of the chain (its own id when it starts one)
    lineage_id        bigint NOT NULL,
    -- the matched galaxy of the earlier release; NULL: a new object
    previous_id       bigint REFERENCES galdb.galaxies ON DELETE CASCADE,
    matched_by        text NOT NULL CHECK (matched_by IN ('key', 'position', 'new')),
    separation_arcsec real,
    CHECK ((matched_by = 'new') = (previous_id IS NULL)),
    CHECK ((previous_id IS NULL) = (separation_arcsec IS NULL))
);
CREATE INDEX galaxy_lineage_lineage_idx ON galdb.galaxy_lineage (lineage_id);
CREATE INDEX galaxy_lineage_previous_idx ON galdb.galaxy_lineage (previous_id);
COMMENT ON TABLE galdb.galaxy_lineage IS
    'Each galaxy''s match in an earlier release of the same sky; lineage_id = X lists one object.';

-- The match of a release (new_release_id) against an earlier one: one row per release, the
-- newest match; phase and cursor let a killed match resume where it stopped.
CREATE TABLE galdb.lineage_matches (
    new_release_id integer PRIMARY KEY REFERENCES galdb.releases ON DELETE CASCADE,
    old_release_id integer NOT NULL REFERENCES galdb.releases ON DELETE CASCADE,
    radius_arcsec  double precision NOT NULL CHECK (radius_arcsec > 0),
    status         text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done')),
    phase          text NOT NULL DEFAULT 'candidates',
    cursor         bigint NOT NULL DEFAULT 0,
    fingerprint    jsonb NOT NULL,  -- galaxy counts and last ids of both releases at the start
    counts         jsonb NOT NULL DEFAULT '{}',
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    CHECK (new_release_id <> old_release_id)
);

-- Work space of a running match: every (new, old) pair within the radius; accepted marks the
-- one-to-one assignment as it is made. A finished match leaves none of its rows.
CREATE TABLE galdb.lineage_candidates (
    new_release_id    integer NOT NULL,
    new_id            bigint NOT NULL,
    old_id            bigint NOT NULL,
    by_key            boolean NOT NULL,
    separation_arcsec double precision NOT NULL,
    accepted          boolean NOT NULL DEFAULT false,
    PRIMARY KEY (new_release_id, new_id, old_id)
);
CREATE INDEX lineage_candidates_old_idx ON galdb.lineage_candidates (new_release_id, old_id);

CREATE VIEW galdb.lineage AS
SELECT l.lineage_id, l.galaxy_id, r.name AS release, g.source_id, g.ra, g.dec,
       l.previous_id, l.matched_by, l.separation_arcsec, r.created_at AS release_created_at
FROM galdb.galaxy_lineage AS l
JOIN galdb.galaxies AS g USING (galaxy_id)
JOIN galdb.releases AS r USING (release_id);
COMMENT ON VIEW galdb.lineage IS
    'Lineage rows with release name, source id and position; WHERE lineage_id = X: one object.';

CREATE FUNCTION galdb.lineage_of(galaxy bigint) RETURNS SETOF galdb.lineage
LANGUAGE sql STABLE AS $$
    SELECT * FROM galdb.lineage
    WHERE lineage_id = (SELECT lineage_id FROM galdb.galaxy_lineage WHERE galaxy_id = galaxy)
    ORDER BY release_created_at, galaxy_id
$$;
COMMENT ON FUNCTION galdb.lineage_of IS
    'Every release''s row of the object a galaxy belongs to, earliest release first.';

GRANT SELECT ON galdb.galaxy_lineage, galdb.lineage_matches, galdb.lineage_candidates,
    galdb.lineage TO galdb_reader, galdb_reviewer;
-- galdb's objects belong to the owner group (0009)
ALTER TABLE galdb.galaxy_lineage OWNER TO galdb_owner;
ALTER TABLE galdb.lineage_matches OWNER TO galdb_owner;
ALTER TABLE galdb.lineage_candidates OWNER TO galdb_owner;
ALTER VIEW galdb.lineage OWNER TO galdb_owner;
ALTER FUNCTION galdb.lineage_of(bigint) OWNER TO galdb_owner;
"""

DOWN = """
DROP FUNCTION galdb.lineage_of(bigint);
DROP VIEW galdb.lineage;
DROP TABLE galdb.lineage_candidates;
DROP TABLE galdb.lineage_matches;
DROP TABLE galdb.galaxy_lineage;
"""


def upgrade() -> None:
    run_sql(UP)


def downgrade() -> None:
    run_sql(DOWN)
