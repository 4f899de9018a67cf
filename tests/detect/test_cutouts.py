"""Detections become galaxies: cutouts of the current run, ingested, keep position and pixels."""

import csv
import uuid

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from galdb.cli import main
from galdb.detect.cutouts import write_cutouts
from galdb.detect.fields import field_paths, read_field
from galdb.detect.store import record_detector, run_detections
from galdb.errors import GaldbError
from galdb.ingest import ingest


@pytest.fixture(scope="module")
def release(settings, trained, loaded, train_dir, test_dir):
    from galdb.db.connect import connect

    name = f"det-{uuid.uuid4().hex[:6]}"
    with connect(settings) as conn:
        version = record_detector(conn, loaded, trained, train_dir)
        conn.commit()
        run_detections(conn, test_dir, name, version_id=version.version_id)
    return name


def test_cutouts_ingest_as_galaxies_at_their_detections(conn, release, test_dir, tmp_path):
    out = tmp_path / "cut"
    summary = write_cutouts(conn, release, out, size=32)
    detections = conn.execute(
        f'SELECT field, detection_id, x, y, ra, dec FROM galdb_detections."{release}" '
        "WHERE kind = 'galaxy'"
    ).fetchall()
    assert summary.written + summary.at_edge + summary.without_wcs == len(detections) > 5
    assert summary.written > 0 and summary.without_wcs == 0
    with summary.catalog.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == summary.written
    fields = {p.stem: read_field(p) for p in field_paths(test_dir)}
    by_id = {f"{d[0]}:{d[1]}": d for d in detections}
    for row in rows[:10]:
        field, _, x, y, ra, dec = by_id[row["source_id"]]
        with fits.open(out / row["file"]) as hdus:
            cube, header = hdus[0].data, hdus[0].header
        # the pixels are the field's, and the WCS puts the detection where it was
        x0, y0 = round(x) - 16, round(y) - 16
        np.testing.assert_array_equal(cube, fields[field].pixels[:, y0 : y0 + 32, x0 : x0 + 32])
        cx, cy = WCS(header).celestial.world_to_pixel_values(ra, dec)
        assert abs(cx - (x - x0)) < 1e-6 and abs(cy - (y - y0)) < 1e-6
    summary_ingest = ingest(conn, out, release + "-galaxies", catalog=summary.catalog)
    assert (summary_ingest.inserted, summary_ingest.quarantined) == (summary.written, 0)
    stored = conn.execute(
        "SELECT source_id, ra, dec, bands FROM galdb.catalog WHERE release = %s",
        (release + "-galaxies",),
    ).fetchall()
    assert len(stored) == summary.written
    ra, dec = by_id[stored[0][0]][4:6]
    assert abs(stored[0][1] - ra) < 1e-6 and abs(stored[0][2] - dec) < 1e-6
    assert stored[0][3] == "g,r,z"


def test_a_rerun_keeps_the_files_and_the_cli_says_what_it_wrote(
    settings, release, tmp_path, capsys
):
    out = tmp_path / "cli"
    assert main(["detect", "cutouts", str(out), "--release", release, "--size", "24"]) == 0
    said = capsys.readouterr().out
    files = sorted((out / "cutouts").glob("r*-24px/*.fits"))
    assert files and "galdb ingest" in said
    stamps = [f.stat().st_mtime_ns for f in files]
    assert main(["detect", "cutouts", str(out), "--release", release, "--size", "24"]) == 0
    assert [f.stat().st_mtime_ns for f in files] == stamps


def test_unknown_release_is_a_clear_error(conn, tmp_path):
    with pytest.raises(GaldbError, match="no detection release 'nope'"):
        write_cutouts(conn, "nope", tmp_path)
