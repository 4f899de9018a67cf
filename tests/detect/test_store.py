"""Versioned detection tables: runs, the atomic switch, positions, cone search, failures."""

import shutil
import uuid

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from galdb.detect.fields import field_paths
from galdb.detect.store import (
    cone_detections,
    get_detector,
    list_runs,
    record_detector,
    run_detections,
    switch,
)
from galdb.errors import GaldbError


@pytest.fixture(scope="module")
def version(settings, trained, loaded, train_dir):
    from galdb.db.connect import connect

    with connect(settings) as conn:
        v = record_detector(conn, loaded, trained, train_dir)
        conn.commit()
    return v


def _view(conn, release):
    return conn.execute(
        f'SELECT field, x, y, ra, dec, kind, version, run FROM galdb_detections."{release}" '
        "ORDER BY detection_id"
    ).fetchall()


def test_run_writes_detections_with_sky_positions(conn, version, test_dir):
    release = f"det-{uuid.uuid4().hex[:6]}"
    run = run_detections(conn, test_dir, release, version_id=version.version_id, chunk_fields=3)
    assert run.status == "ready" and run.current and run.n_fields == 6
    rows = _view(conn, release)
    assert len(rows) == run.n_detections > 20
    assert {r[5] for r in rows} <= {"galaxy", "star"} and {r[6] for r in rows} == {
        version.version_id
    }
    # ra, dec are the pixel positions through each field's WCS
    path = field_paths(test_dir)[0]
    wcs = WCS(fits.getheader(path)).celestial
    mine = [r for r in rows if r[0] == path.stem]
    x, y = wcs.world_to_pixel_values([r[3] for r in mine], [r[4] for r in mine])
    assert np.allclose(x, [r[1] for r in mine], atol=1e-6)
    assert np.allclose(y, [r[2] for r in mine], atol=1e-6)
    # cone search on the zone index finds a detection at its own position, nearest first
    field, _, _, ra, dec = mine[0][:5]
    hits = cone_detections(conn, release, ra, dec, 2 / 3600)
    assert hits[0][4:6] == (ra, dec) and hits[0][1] == field and hits[0][-1] < 1e-9
    assert all(h[-1] <= 2 / 3600 for h in hits)
    # readers can query the view
    assert conn.execute("SELECT has_table_privilege('galdb_reader', %s, 'SELECT')",
                        (f'galdb_detections."{release}"',)).fetchone()[0]  # fmt: skip


def test_versions_switch_atomically_and_a_failed_run_changes_nothing(
    conn, version, test_dir, tmp_path
):
    release = f"det-{uuid.uuid4().hex[:6]}"
    first = run_detections(conn, test_dir, release, version_id=version.version_id)
    before = _view(conn, release)
    # a second run with another threshold: its own table, the view moves to it
    higher = version.threshold + 0.1
    second = run_detections(
        conn, test_dir, release, threshold=higher, version_id=version.version_id
    )
    after = _view(conn, release)
    assert {r[7] for r in after} == {second.run_id} and 0 < len(after) < len(before)
    # the first run's table is still there and the view can go back to it
    switch(conn, release, first.run_id)
    conn.commit()
    assert _view(conn, release) == before
    # a run that fails midway (a broken field after good ones) leaves the view as it was
    broken = tmp_path / "fields"
    broken.mkdir()
    for p in field_paths(test_dir)[:4]:
        shutil.copy(p, broken / p.name)
    (broken / "zz_broken.fits").write_bytes(b"not a FITS file")
    with pytest.raises(GaldbError, match="zz_broken.fits"):
        run_detections(conn, tmp_path, release, version_id=version.version_id, chunk_fields=2)
    assert _view(conn, release) == before
    runs = list_runs(conn, release)
    assert [r.status for r in runs] == ["ready", "ready", "failed"]
    assert [r.current for r in runs] == [True, False, False]
    failed = runs[-1].run_id
    build = f"galdb_detection_runs.r{failed}_build"
    assert conn.execute("SELECT to_regclass(%s)", (build,)).fetchone()[0] is None
    with pytest.raises(GaldbError, match="not a ready run"):
        switch(conn, release, failed)


def test_bad_release_and_unknown_version(conn, version, test_dir):
    with pytest.raises(GaldbError, match="lower-case"):
        run_detections(conn, test_dir, "Bad Name!", version_id=version.version_id)
    with pytest.raises(GaldbError, match="not found"):
        get_detector(conn, 10**6)


@pytest.mark.slow
def test_a_killed_run_resumes(settings, conn, version, test_dir, tmp_path):
    """SIGKILL during `galdb detect run`, run it again: the same run completes, with the rows
    an uninterrupted run writes."""
    import subprocess
    import sys

    from tests.conftest import kill_midway

    fields = tmp_path / "many"
    fields.mkdir()
    sources = field_paths(test_dir)
    for i in range(160):  # 5 chunks of 32 fields
        (fields / f"f{i:03d}.fits").symlink_to(sources[i % len(sources)])
    release = f"det-{uuid.uuid4().hex[:6]}"
    cmd = [sys.executable, "-m", "galdb", "detect", "run", str(fields), "--release", release,
           "--version", str(version.version_id)]  # fmt: skip

    def stored(c):
        row = c.execute(
            "SELECT max(run_id) FROM galdb.detection_runs WHERE release = %s", (release,)
        ).fetchone()
        if row[0] is None:
            return 0
        table = f"galdb_detection_runs.r{row[0]}_build"
        if c.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
            return 0
        return c.execute(f"SELECT count(DISTINCT field) FROM {table}").fetchone()[0]

    done = kill_midway(cmd, conn, stored, at_least=32)
    assert 0 < done < 160, "the run should have been killed midway"
    assert [r.status for r in list_runs(conn, release)] == ["building"]
    rerun = subprocess.run(cmd, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    runs = list_runs(conn, release)
    assert [(r.status, r.current, r.n_fields) for r in runs] == [("ready", True, 160)]
    resumed = conn.execute(
        f'SELECT field, x, y, kind FROM galdb_detections."{release}" ORDER BY field, x, y'
    ).fetchall()
    other = f"{release}-whole"
    run_detections(conn, fields, other, version_id=version.version_id)
    whole = conn.execute(
        f'SELECT field, x, y, kind FROM galdb_detections."{other}" ORDER BY field, x, y'
    ).fetchall()
    # the same detections; positions agree to float noise (the subprocess may run the network
    # on another number of threads, which changes the last bits of a convolution)
    assert [(r[0], r[3]) for r in resumed] == [(w[0], w[3]) for w in whole]
    np.testing.assert_allclose([r[1:3] for r in resumed], [w[1:3] for w in whole], atol=1e-3)


@pytest.mark.realdata
def test_a_real_frame_without_wcs(conn, version, tmp_path):
    """The NTT frame (ADU, no celestial WCS): detections with pixel positions, NULL ra/dec."""
    from tests.conftest import real_dir

    (tmp_path / "image.fits").symlink_to(real_dir("sep_ntt_emmi_field") / "image.fits")
    release = f"det-{uuid.uuid4().hex[:6]}"
    with pytest.warns(UserWarning):  # astropy: the frame's ESO-LOG cards are not standard
        run = run_detections(
            conn, tmp_path, release, version_id=version.version_id, noise_match=True
        )
    rows = _view(conn, release)
    assert run.n_fields == 1 and len(rows) == run.n_detections > 5
    assert all(r[0] == "image" and r[3] is None and r[4] is None for r in rows)
    assert all(0 <= r[1] < 256 and 0 <= r[2] < 256 for r in rows)
