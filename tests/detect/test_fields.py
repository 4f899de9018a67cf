"""Simulated fields: truth positions, WCS round trip, resumable and deterministic output."""

import csv

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from galdb.detect.fields import field_paths, read_field, read_truth
from galdb.sim.fields import TRUTH_COLUMNS, field_objects, simulate_fields
from tests.detect.conftest import SIZE


def _truth(directory):
    with (directory / "truth.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_fields_have_truth_and_a_wcs_that_round_trips(train_dir):
    rows = _truth(train_dir)
    assert tuple(rows[0]) == TRUTH_COLUMNS
    assert {r["kind"] for r in rows} == {"galaxy", "star"}
    paths = field_paths(train_dir)
    assert len(paths) == 12 and {r["field"] for r in rows} == {p.stem for p in paths}
    for path in paths[:3]:
        header = fits.getheader(path)
        wcs = WCS(header).celestial
        mine = [r for r in rows if r["field"] == path.stem]
        ra = np.array([float(r["ra"]) for r in mine])
        dec = np.array([float(r["dec"]) for r in mine])
        x, y = wcs.world_to_pixel_values(ra, dec)  # 0-based, as the truth
        assert np.allclose(x, [float(r["x"]) for r in mine], atol=1e-3)
        assert np.allclose(y, [float(r["y"]) for r in mine], atol=1e-3)
        field = read_field(path)
        back_ra, back_dec = field.sky(x, y)
        assert np.allclose(back_ra, ra, atol=1e-9) and np.allclose(back_dec, dec, atol=1e-9)
        assert field.pixels.shape == (3, SIZE, SIZE) and field.bands == ["g", "r", "z"]


def test_bright_objects_sit_at_their_truth_positions(train_dir):
    """The r-band light of each bright object peaks within a pixel of its truth position."""
    truth = read_truth(train_dir)
    checked = 0
    for path in field_paths(train_dir):
        r = read_field(path).pixels[1]
        objects = truth[path.stem]
        for x, y, _, _ in objects:
            others = np.hypot(objects[:, 0] - x, objects[:, 1] - y)
            ix, iy = int(round(x)), int(round(y))
            if np.sort(others)[1] < 12 or not (6 <= ix < SIZE - 6 and 6 <= iy < SIZE - 6):
                continue
            stamp = r[iy - 3 : iy + 4, ix - 3 : ix + 4]
            if stamp.max() < 0.3:  # faint: noise could win
                continue
            py, px = np.unravel_index(np.argmax(stamp), stamp.shape)
            assert abs(px - 3 + ix - x) <= 1.5 and abs(py - 3 + iy - y) <= 1.5, path.stem
            checked += 1
    assert checked >= 10


def test_same_seed_same_fields_and_resume(tmp_path, train_dir):
    simulate_fields(tmp_path, 2, seed=5, size=SIZE)
    first = field_paths(tmp_path)[1]
    assert fits.getdata(first).tobytes() == fits.getdata(field_paths(train_dir)[1]).tobytes()
    # a rerun keeps existing files (resume) and rewrites the same truth
    before = first.stat().st_mtime_ns
    simulate_fields(tmp_path, 3, seed=5, size=SIZE)
    assert first.stat().st_mtime_ns == before and len(field_paths(tmp_path)) == 3
    assert _truth(tmp_path)[: len(_truth(train_dir))] == _truth(train_dir)[: len(_truth(tmp_path))]
    assert len(field_objects(5, 0, size=SIZE).objects) == sum(
        1 for r in _truth(tmp_path) if r["field"] == "field_5_00000"
    )
