"""Re-ingest inserts nothing; an ingest killed midway and rerun equals one clean run."""

import sys
import time

import pytest

from galdb.datasets.sky import write_catalog_csv
from galdb.db.connect import connect
from galdb.errors import GaldbError
from galdb.ingest import ingest, runs
from tests.conftest import kill_midway


def _content(conn, release):
    return conn.execute(
        "SELECT source_id, ra, dec, props FROM galdb.catalog WHERE release = %s ORDER BY source_id",
        (release,),
    ).fetchall()


def test_reingest_is_idempotent(conn, tmp_path, unique_release):
    catalog = write_catalog_csv(tmp_path / "cat.csv", 500, seed=3)
    first = ingest(conn, catalog, unique_release)
    second = ingest(conn, catalog, unique_release)
    assert (first.inserted, first.present) == (500, 0)
    assert (second.inserted, second.present, second.quarantined) == (0, 500, 0)
    assert second.skipped_unchanged
    # A changed file (more rows) is read again: only the new rows go in.
    bigger = write_catalog_csv(tmp_path / "cat.csv", 520, seed=3)
    third = ingest(conn, bigger, unique_release)
    assert (third.inserted, third.present) == (20, 500)
    assert len(_content(conn, unique_release)) == 520


def test_killed_ingest_resumes_to_the_same_rows(conn, settings, tmp_path, unique_release):
    catalog = write_catalog_csv(tmp_path / "cat.csv", 30_000, seed=5)
    clean = unique_release + "-clean"
    ingest(conn, catalog, clean)

    cmd = [
        sys.executable,
        "-m",
        "galdb",
        "ingest",
        str(catalog),
        "--release",
        unique_release,
        "--batch-size",
        "500",
    ]

    def count(c):
        return c.execute(
            "SELECT count(*) FROM galdb.catalog WHERE release = %s", (unique_release,)
        ).fetchone()[0]

    stored = kill_midway(cmd, conn, count, at_least=2000)
    assert 0 < stored < 30_000, "the ingest should have been killed midway"

    resumed = ingest(conn, catalog, unique_release)
    assert resumed.present >= 2000 and resumed.inserted + resumed.present == 30_000
    assert _content(conn, unique_release) == _content(conn, clean)
    statuses = [
        r[0]
        for r in conn.execute(
            "SELECT status FROM galdb.ingest_runs r JOIN galdb.releases USING (release_id) "
            "WHERE name = %s ORDER BY run_id",
            (unique_release,),
        )
    ]
    assert statuses == ["interrupted", "completed"]


def test_a_running_ingest_of_the_release_is_waited_for_then_refused(
    conn, settings, tmp_path, unique_release, monkeypatch
):
    catalog = write_catalog_csv(tmp_path / "cat.csv", 50, seed=6)
    ingest(conn, catalog, unique_release)
    release_id = conn.execute(
        "SELECT release_id FROM galdb.releases WHERE name = %s", (unique_release,)
    ).fetchone()[0]
    monkeypatch.setattr(runs, "LOCK_WAIT_S", 0.3)
    with connect(settings, autocommit=True) as other:  # another ingest holds the release
        other.execute("SELECT pg_advisory_lock(%s, %s)", (runs.LOCK_NAMESPACE, release_id))
        started = time.monotonic()
        with pytest.raises(GaldbError, match="another ingest of this release is running"):
            ingest(conn, catalog, unique_release)
        assert time.monotonic() - started >= 0.3
        conn.rollback()
    assert ingest(conn, catalog, unique_release).present == 50  # free again: it runs
