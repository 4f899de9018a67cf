"""Restorations: versions of a denoising/deblurring network and the restored cutouts' files.

A restoration version is one trained network (its weights in ``weights``, rebuilt from
``config``); ``galdb restore run`` writes each galaxy's restored cutout to a FITS file and
records its path in ``galdb.restorations`` (pixels stay in files). At most one version is
current (a partial unique index); ``galdb.restorations_current`` shows the current version's
rows, so switching versions is one transaction that readers see whole.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from galdb.db.migrate import run_sql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UP = """
CREATE TABLE galdb.restoration_versions (
    version_id      serial PRIMARY KEY,
    model_spec      text NOT NULL,          -- the LVM backbone the encoder started from
    backbone_sha256 text NOT NULL,
    config          jsonb NOT NULL,         -- architecture, preprocessing, decoder width
    hyperparameters jsonb NOT NULL,
    pairs           text NOT NULL,          -- the pairs folder it was trained on
    metrics         jsonb NOT NULL DEFAULT '{}',
    weights         bytea NOT NULL,         -- torch state dict of the whole network
    weights_sha256  text NOT NULL,
    train_seconds   real,
    is_current      boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX restoration_versions_one_current_idx
    ON galdb.restoration_versions ((true)) WHERE is_current;

CREATE TABLE galdb.restorations (
    version_id integer NOT NULL REFERENCES galdb.restoration_versions ON DELETE CASCADE,
    galaxy_id  bigint NOT NULL REFERENCES galdb.galaxies ON DELETE CASCADE,
    path       text NOT NULL,               -- FITS file of the restored cutout
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (version_id, galaxy_id)
);
CREATE INDEX restorations_galaxy_idx ON galdb.restorations (galaxy_id);

CREATE VIEW galdb.restorations_current AS
    SELECT r.galaxy_id, r.path, r.version_id
    FROM galdb.restorations r
    JOIN galdb.restoration_versions v ON v.version_id = r.version_id AND v.is_current;

GRANT SELECT ON galdb.restoration_versions, galdb.restorations, galdb.restorations_current
    TO galdb_reader, galdb_reviewer;
-- galdb's objects belong to the owner group (0009)
ALTER TABLE galdb.restoration_versions OWNER TO galdb_owner;
ALTER TABLE galdb.restorations OWNER TO galdb_owner;
ALTER VIEW galdb.restorations_current OWNER TO galdb_owner;
"""

DOWN = """
DROP VIEW galdb.restorations_current;
DROP TABLE galdb.restorations;
DROP TABLE galdb.restoration_versions;
"""


def upgrade() -> None:
    run_sql(UP)


def downgrade() -> None:
    run_sql(DOWN)
