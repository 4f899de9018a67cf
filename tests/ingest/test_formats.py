"""Each input format: FITS cutouts, images + catalog (CSV/FITS/ECSV/Parquet), HDF5 layouts."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from PIL import Image

from galdb.datasets.hdf5 import write_galaxy10, write_ssl_legacysurvey
from galdb.ingest import Columns, ingest
from galdb.ingest.records import coordinates_from_name


def _rows(conn, release, columns="source_id, ra, dec"):
    return conn.execute(
        f"SELECT {columns} FROM galdb.catalog WHERE release = %s ORDER BY source_id", (release,)
    ).fetchall()


def test_single_band_fits_with_wcs(conn, tmp_path, unique_release):
    header = fits.Header()
    header.update(
        CTYPE1="RA---TAN",
        CTYPE2="DEC--TAN",
        CRVAL1=359.99,
        CRVAL2=-89.99,
        CRPIX1=10.5,
        CRPIX2=10.5,
        CDELT1=-0.2 / 3600,
        CDELT2=0.2 / 3600,
        FILTER="r",
    )
    fits.PrimaryHDU(np.ones((20, 20), np.float32), header).writeto(tmp_path / "one.fits")
    ingest(conn, tmp_path, unique_release)
    ((sid, ra, dec, bands, scale, shape),) = _rows(
        conn, unique_release, "source_id, ra, dec, bands, pixel_scale, shape"
    )
    assert (sid, bands, shape) == ("one", "r", [1, 20, 20])
    assert ra == pytest.approx(359.99, abs=1e-9) and dec == pytest.approx(-89.99, abs=1e-9)
    assert scale == pytest.approx(0.2, rel=1e-6)


def test_fits_centre_from_name_when_no_wcs(conn, tmp_path, unique_release):
    fits.PrimaryHDU(np.ones((3, 16, 16), np.float32)).writeto(tmp_path / "cutout_12.5_-3.25.fits")
    ingest(conn, tmp_path, unique_release)
    assert _rows(conn, unique_release) == [("cutout_12.5_-3.25", 12.5, -3.25)]


def test_name_pattern():
    assert coordinates_from_name("cutout_0.1286_-1.213") == (0.1286, -1.213)
    assert coordinates_from_name("10.451_-9.284") == (10.451, -9.284)
    assert coordinates_from_name("J001240.06-000210.4") is None


@pytest.mark.parametrize("suffix", [".csv", ".fits", ".ecsv", ".parquet"])
def test_catalog_formats_keep_extra_columns(conn, tmp_path, unique_release, suffix):
    (tmp_path / "img").mkdir()
    for name in ("x1", "x2"):
        Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(tmp_path / "img" / f"{name}.jpg")
    table = Table(
        {
            "objname": ["x1", "x2"],
            "RA_J": [1.5, 2.5],
            "DEC_J": [-1.0, 1.0],
            "path": ["img/x1.jpg", "img/x2.jpg"],
            "zphot": [0.1, 0.2],
            "klass": ["S", "E"],
        }
    )
    table.write(tmp_path / f"cat{suffix}")
    ingest(
        conn,
        tmp_path,
        unique_release,
        catalog=tmp_path / f"cat{suffix}",
        columns=Columns(id="objname", ra="RA_J", dec="DEC_J", file="path"),
    )
    rows = _rows(conn, unique_release, "source_id, ra, dec, props, bands, shape")
    assert rows == [
        ("x1", 1.5, -1.0, {"zphot": 0.1, "klass": "S"}, "r,g,b", [3, 24, 24]),
        ("x2", 2.5, 1.0, {"zphot": 0.2, "klass": "E"}, "r,g,b", [3, 24, 24]),
    ]
    mean = conn.execute(
        "SELECT avg((props->>'zphot')::float) FROM galdb.catalog WHERE release = %s",
        (unique_release,),
    ).fetchone()[0]
    assert mean == pytest.approx(0.15)


def test_catalog_only_rows_without_files(conn, tmp_path, unique_release):
    Table({"id": [1, 2, 3], "ra": [0.0, 120.0, 240.0], "dec": [0.0, 45.0, -45.0]}).write(
        tmp_path / "cat.csv"
    )
    summary = ingest(conn, tmp_path / "cat.csv", unique_release)
    assert summary.inserted == 3
    assert _rows(conn, unique_release, "source_id, pixel_uri") == [
        ("1", None),
        ("2", None),
        ("3", None),
    ]


def test_hdf5_ssl_legacysurvey_layout(conn, tmp_path, unique_release):
    path = write_ssl_legacysurvey(tmp_path / "ssl.h5", n=300, size=16)
    with __import__("h5py").File(path, "a") as h5:
        h5["images"][7] = np.nan  # one all-NaN cutout
        ra, dec = h5["ra"][:], h5["dec"][:]
    summary = ingest(conn, path, unique_release, pixel_scale=0.262)
    assert (summary.inserted, summary.quarantined) == (299, 1)
    rows = conn.execute(
        "SELECT pixel_index, ra, dec, bands, shape, pixel_member, pixel_uri, props "
        "FROM galdb.catalog WHERE release = %s ORDER BY pixel_index",
        (unique_release,),
    ).fetchall()
    assert [r[0] for r in rows] == [i for i in range(300) if i != 7]
    idx, r_ra, r_dec, bands, shape, member, uri, props = rows[10]
    assert (r_ra, r_dec) == (pytest.approx(ra[idx]), pytest.approx(dec[idx]))
    assert (bands, shape, member, uri) == ("g,r,z", [3, 16, 16], "images", str(path))
    assert set(props) == {"brickid", "objid", "z_phot_median"}


def test_hdf5_galaxy10_layout(conn, tmp_path, unique_release):
    path = write_galaxy10(tmp_path / "Galaxy10_DECals.h5", n=40, size=24)
    ingest(conn, path, unique_release)
    rows = _rows(conn, unique_release, "source_id, bands, shape, props->'ans', pixel_index")
    assert len(rows) == 40
    sid, bands, shape, ans, index = rows[0]
    assert sid == f"Galaxy10_DECals:{index}"
    assert (bands, shape) == ("r,g,b", [3, 24, 24]) and 0 <= ans <= 9
