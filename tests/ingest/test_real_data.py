"""Ingest every real set in ../shared/data/real and check counts and coordinates.

Skipped with a reason where ../shared is absent (a user's fresh clone).
"""

import csv

import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from galdb.ingest import Columns, ingest
from tests.conftest import real_dir


def _read_csv(path):
    with path.open() as fh:
        return list(csv.DictReader(fh))


def _stored(conn, release, columns="source_id, ra, dec"):
    return {
        r[0]: r[1:]
        for r in conn.execute(f"SELECT {columns} FROM galdb.catalog WHERE release = %s", (release,))
    }


def test_decals_dr9_fits_cutouts(conn, unique_release):
    root = real_dir("decals_dr9_grz_fits_lvm")
    summary = ingest(conn, root / "fits", unique_release, survey="DESI Legacy Surveys")
    assert (summary.inserted, summary.quarantined) == (20, 0)
    stored = _stored(conn, unique_release, "source_id, ra, dec, bands, pixel_scale, shape")
    assert len(stored) == 20
    for sid, (ra, dec, bands, scale, shape) in stored.items():
        _, name_ra, name_dec = sid.split("_")
        # The WCS centre and the file name agree to far better than a pixel (0.262").
        sep = SkyCoord(ra * u.deg, dec * u.deg).separation(
            SkyCoord(float(name_ra) * u.deg, float(name_dec) * u.deg)
        )
        assert sep < 0.01 * u.arcsec
        assert (bands, shape) == ("g,r,z", [3, 256, 256])
        assert scale == pytest.approx(0.262, rel=1e-3)


def test_zoobot_rings_jpeg_catalog(conn, unique_release):
    root = real_dir("zoobot_gzdecals_rings")
    rows = _read_csv(root / "catalog.csv")
    summary = ingest(
        conn,
        root,
        unique_release,
        catalog=root / "catalog.csv",
        columns=Columns(id="iauname", ra="ra_deg", dec="dec_deg", file="image_file"),
    )
    assert (summary.inserted, summary.quarantined) == (len(rows), 0) == (376, 0)
    stored = _stored(conn, unique_release, "source_id, ra, dec, props->'ring', shape")
    for row in rows:
        ra, dec, ring, shape = stored[row["iauname"]]
        assert (ra, dec) == (float(row["ra_deg"]), float(row["dec_deg"]))
        assert ring == int(row["ring"]) and shape == [3, 424, 424]
    rings = conn.execute(
        "SELECT count(*) FROM galdb.catalog WHERE release = %s AND (props->>'ring')::int = 1",
        (unique_release,),
    ).fetchone()[0]
    assert rings == 188


def test_gz2_images_without_coordinates(conn, unique_release):
    root = real_dir("gz2_kaggle_spiral_binary")
    rows = _read_csv(root / "labels.csv")
    summary = ingest(conn, root / "labels.csv", unique_release)
    assert (summary.inserted, summary.quarantined) == (len(rows), 0) == (1600, 0)
    stored = _stored(conn, unique_release, "source_id, ra, props->>'label_name'")
    assert all(ra is None for ra, _ in stored.values())
    assert {r["galaxy_id"]: r["label_name"] for r in rows} == {k: v[1] for k, v in stored.items()}


def test_gz1_objids_keep_every_digit(conn, unique_release):
    root = real_dir("gz1_sdss_6class")
    rows = _read_csv(root / "labels.csv")
    summary = ingest(conn, root / "labels.csv", unique_release, columns=Columns(id="objid"))
    assert summary.inserted == len(rows) == 5331
    stored = _stored(conn, unique_release, "source_id, props->>'class_name'")
    assert {r["objid"]: r["class_name"] for r in rows} == {k: v[0] for k, v in stored.items()}


def test_first_radio_png_names_carry_coordinates(conn, unique_release):
    root = real_dir("first_radio_fr_4class")
    rows = _read_csv(root / "labels.csv")
    summary = ingest(conn, root / "images", unique_release, survey="FIRST")
    assert summary.inserted == len(rows) == 2158
    stored = _stored(conn, unique_release, "source_id, ra, dec, bands, shape")
    for row in rows:
        ra, dec, bands, shape = stored[row["source_id"]]
        assert (ra, dec) == (float(row["ra_deg"]), float(row["dec_deg"]))
        assert (bands, shape) == ("L", [1, 300, 300])


@pytest.mark.parametrize("name", ["sep_ntt_emmi_field", "photutils_spitzer_glimpse"])
def test_single_fits_frames(conn, unique_release, name):
    root = real_dir(name)
    summary = ingest(conn, root, unique_release)
    assert summary.inserted >= 1
    wcs_frames = conn.execute(
        "SELECT source_id, ra, dec, shape FROM galdb.catalog WHERE release = %s AND "
        "source_id = 'spitzer_example_image'",
        (unique_release,),
    ).fetchall()
    if name == "photutils_spitzer_glimpse":
        ((_, ra, dec, shape),) = wcs_frames
        assert ra is not None and shape[0] == 1
