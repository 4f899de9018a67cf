"""Write ``tests/db/dumps/<revision>.sql``: a small galdb database at an old revision, dumped.

``tests/db/test_schema_history.py`` restores every dump in that folder, upgrades it to head
and checks that its schema equals a freshly migrated database's and that its rows survived.
Migrations are frozen (they carry their own SQL), so a dump made today at revision R is what a
user's database at R looks like; when R becomes the oldest revision galdb supports, add its
dump here and keep the older ones for as long as upgrading from them is supported.

Usage, from the repository root with the virtual environment active::

    python scripts/make_schema_dump.py 0001

How the dump is made: a throw-away embedded server in a temporary directory (same PostgreSQL
and pgvector as the tests), its ``galdb`` database migrated to the revision with galdb's own
runner, the rows of :data:`DATA` for that revision inserted (fixed timestamps, so the dump is
reproducible), then ``pg_dump --no-owner`` in plain SQL with a fixed ``\\restrict`` key. Owners
are left out (the restoring superuser owns everything, as in a fresh database); privileges are
kept, because the grants to ``galdb_reader`` are part of the schema the test compares (the role
exists on the test server, created by the session's ``galdb db init``). A revision without an
entry in :data:`DATA` is refused: write one whose rows fill every table of that revision.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from galdb.db import migrate, server
from galdb.db.connect import connect, database_url
from galdb.db.settings import Settings

DUMPS = Path(__file__).resolve().parents[1] / "tests" / "db" / "dumps"
RESTRICT_KEY = "galdbschemadump"  # psql's \restrict key; fixed so that the file is reproducible

# A little of everything each revision's tables hold, as a user's catalog would.
DATA = {
    "0001": """
INSERT INTO galdb.surveys (name, description, created_at)
VALUES ('galdb-sim', 'simulated survey', '2026-11-28 12:00:00+00');
INSERT INTO galdb.releases (survey_id, name, description, created_at)
VALUES (1, 'mock-1', 'a small mock release', '2026-11-28 12:00:00+00');
INSERT INTO galdb.ingest_runs (release_id, source, format, options, status, started_at,
                               finished_at, n_files, n_inserted, n_present, n_quarantined)
VALUES (1, '/data/mock-1/catalog.csv', 'catalog', '{"id_col": "source_id"}', 'completed',
        '2026-11-28 12:01:00+00', '2026-11-28 12:02:00+00', 4, 4, 0, 1);
INSERT INTO galdb.ingest_files (release_id, path, sha256, size_bytes, rows_done, completed,
                                run_id, updated_at)
VALUES (1, '/data/mock-1/catalog.csv', repeat('ab', 32), 1234, 5, true, 1,
        '2026-11-28 12:02:00+00');
INSERT INTO galdb.galaxies (release_id, source_id, ra, dec, pixel_uri, pixel_member,
                            pixel_index, bands, pixel_scale, shape, props, ingest_run_id)
VALUES (1, 'g0001', 150.1, 2.2, 'file:///data/mock-1/g0001.fits', NULL, NULL, 'grz', 0.262,
        '{3,64,64}', '{"mag_r": 17.5, "morph_class": "spiral"}', 1),
       (1, 'g0002', 359.999, -89.9, 'file:///data/mock-1/g0002.fits', NULL, NULL, 'grz', 0.262,
        '{3,64,64}', '{"mag_r": 18.1, "morph_class": "elliptical"}', 1),
       (1, 'g0003', 0.0, 45.0, 'file:///data/mock-1/images.h5', 'images', 7, 'grz', 0.262,
        '{3,64,64}', '{}', 1),
       (1, 'g0004', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '{"mag_r": 19.0}', 1);
INSERT INTO galdb.quarantine (run_id, release_id, source, item, code, reason, created_at)
VALUES (1, 1, '/data/mock-1/catalog.csv', 'row 6', 'coord_out_of_range',
        'dec 91.0 is outside [-90, 90]', '2026-11-28 12:01:30+00');
""",
}


def pg_tool(name: str) -> Path:
    """Path of a client program (``pg_dump``, ``psql``) of the embedded server's PostgreSQL."""
    return server._bin_path() / name


def make_dump(revision: str, out: Path) -> Path:
    """Migrate a throw-away database to ``revision``, fill it with ``DATA`` and dump it to ``out``.

    Raises
    ------
    SystemExit
        If ``DATA`` has no rows for ``revision``.
    """
    if revision not in DATA:
        raise SystemExit(f"no rows for revision {revision!r} in DATA of {__file__}: add them")
    home = Path(tempfile.mkdtemp(prefix="galdb-dump-"))
    settings = Settings(home=home)
    try:
        reached = migrate.upgrade(settings, revision)
        if reached != revision:
            raise SystemExit(f"migrating to {revision!r} reached {reached!r}")
        with connect(settings) as conn:
            conn.execute(DATA[revision])
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                str(pg_tool("pg_dump")),
                "--no-owner",
                "--restrict-key",
                RESTRICT_KEY,
                "--file",
                str(out),
                "--dbname",
                database_url(settings),
            ],
            check=True,
        )
    finally:
        server.stop(settings.pgdata)
        shutil.rmtree(home, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", help="the alembic revision to dump, e.g. 0001")
    parser.add_argument("--out", type=Path, help="default: tests/db/dumps/<revision>.sql")
    args = parser.parse_args(argv)
    out = make_dump(args.revision, args.out or DUMPS / f"{args.revision}.sql")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
