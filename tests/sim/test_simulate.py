"""Tests of the GalSim mock-release simulator, run against real GalSim output."""

import csv
import re

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from galdb.sim import CATALOG_COLUMNS, CLASSES, simulate_galaxy, simulate_release
from galdb.sim.simulate import pixel_noise_sigma

N_RUN, SEED, SIZE = 25, 0, 64


def _read_cube(path):
    with fits.open(path) as hdul:
        return hdul[0].data.copy(), hdul[0].header.copy()


def _csv_rows(path):
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def _flux(mag):
    return 10.0 ** ((22.5 - np.asarray(mag)) / 2.5)


def _moments(image):
    """Unweighted second moments (Ixx, Iyy, Ixy) of a noise-free image about its centroid."""
    y, x = np.indices(image.shape)
    w = image / image.sum()
    xc, yc = (w * x).sum(), (w * y).sum()
    return (w * (x - xc) ** 2).sum(), (w * (y - yc) ** 2).sum(), (w * (x - xc) * (y - yc)).sum()


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    catalog = simulate_release(out, N_RUN, SEED, size=SIZE)
    return out, catalog, Table.read(catalog, format="ascii.csv")


@pytest.fixture(scope="module")
def release_again(tmp_path_factory):
    out = tmp_path_factory.mktemp("release_again")
    return out, simulate_release(out, N_RUN, SEED, size=SIZE)


def test_layout_and_catalog_columns(release):
    out, catalog, table = release
    assert catalog == out / "catalog.csv"
    assert tuple(table.colnames) == CATALOG_COLUMNS
    assert len(table) == N_RUN
    assert not (out / "catalog.csv.partial").exists()
    for i, row in enumerate(table):
        assert row["source_id"] == f"sim_{SEED}_{i:07d}"
        assert row["file"] == f"cutouts/sim_{SEED}_{i:07d}.fits"
        assert (out / row["file"]).is_file()
        assert row["morph_class"] in CLASSES
    assert np.all((table["mag_r"] > 15.5) & (table["mag_r"] < 20.0))
    assert np.all((table["ellipticity"] >= 0) & (table["ellipticity"] < 1))
    assert np.all((table["position_angle_deg"] >= 0) & (table["position_angle_deg"] < 180))


def test_same_seed_is_identical(release, release_again):
    (out_a, cat_a, _), (out_b, cat_b) = release, release_again
    assert cat_a.read_bytes() == cat_b.read_bytes()
    for path in sorted((out_a / "cutouts").glob("*.fits")):
        data_a, _ = _read_cube(path)
        data_b, _ = _read_cube(out_b / "cutouts" / path.name)
        assert data_a.tobytes() == data_b.tobytes()


def test_different_seed_differs(tmp_path, release):
    out, _, table = release
    other = Table.read(simulate_release(tmp_path, 3, SEED + 1, size=SIZE), format="ascii.csv")
    assert not np.array_equal(other["ra"], table["ra"][:3])
    data_other, _ = _read_cube(tmp_path / other["file"][0])
    data_ref, _ = _read_cube(out / table["file"][0])
    assert not np.array_equal(data_other, data_ref)


def test_galaxy_does_not_depend_on_n(tmp_path):
    small = simulate_release(tmp_path / "n5", 5, 7, size=32)
    large = simulate_release(tmp_path / "n8", 8, 7, size=32)
    rows_small, rows_large = _csv_rows(small), _csv_rows(large)
    assert rows_small == rows_large[:6]  # header + 5 galaxies
    for row in rows_small[1:]:
        data_small, _ = _read_cube(tmp_path / "n5" / row[3])
        data_large, _ = _read_cube(tmp_path / "n8" / row[3])
        assert data_small.tobytes() == data_large.tobytes()


def test_cutout_shape_dtype_and_header(release):
    out, _, table = release
    for row in table[:5]:
        data, header = _read_cube(out / row["file"])
        assert data.shape == (3, SIZE, SIZE)
        assert data.dtype.kind == "f" and data.dtype.itemsize == 4
        assert header["BANDS"] == "grz" and header["SURVEY"] == "galdb-sim"
        assert header["BUNIT"] == "nanomaggy" and header["PIXSCALE"] == 0.262
        assert header["CTYPE1"] == "RA---TAN" and header["CTYPE2"] == "DEC--TAN"
        assert header["CRPIX1"] == header["CRPIX2"] == SIZE / 2 + 0.5
        assert header["CD1_1"] == pytest.approx(-0.262 / 3600)
        assert header["CD2_2"] == pytest.approx(0.262 / 3600)
        assert header["PSFFWHMR"] == row["psf_fwhm_r_arcsec"]
        assert 0.8 < header["PSFFWHMG"] < 2.5 and 0.8 < header["PSFFWHMZ"] < 2.5
        wcs = WCS(header).celestial
        centre = wcs.pixel_to_world(SIZE / 2 - 0.5, SIZE / 2 - 0.5)
        assert centre.ra.deg == pytest.approx(row["ra"], abs=1e-9)
        assert centre.dec.deg == pytest.approx(row["dec"], abs=1e-9)
        assert proj_plane_pixel_scales(wcs) * 3600 == pytest.approx([0.262, 0.262])


def test_east_is_left(release):
    out, _, table = release
    _, header = _read_cube(out / table["file"][0])
    wcs = WCS(header).celestial
    left, up = wcs.pixel_to_world(0, SIZE / 2 - 0.5), wcs.pixel_to_world(SIZE / 2 - 0.5, SIZE - 1)
    centre = SkyCoord(table["ra"][0], table["dec"][0], unit="deg")
    assert centre.position_angle(left).deg == pytest.approx(90.0, abs=0.1)
    assert centre.position_angle(up).deg == pytest.approx(0.0, abs=0.1) or (
        centre.position_angle(up).deg == pytest.approx(360.0, abs=0.1)
    )


def test_every_class_appears_equally(release):
    _, _, table = release
    classes, counts = np.unique(np.asarray(table["morph_class"]), return_counts=True)
    assert set(classes) == set(CLASSES)
    assert set(counts) == {N_RUN // len(CLASSES)}


def test_positions_inside_field(release):
    _, _, table = release
    sep = SkyCoord(table["ra"], table["dec"], unit="deg").separation(
        SkyCoord(150.0, 2.0, unit="deg")
    )
    assert np.all(sep.deg <= 1.0 + 1e-9)


def test_r_band_flux_matches_catalog(release):
    out, _, table = release
    compact = table[(table["morph_class"] != "merger") & (table["half_light_radius_arcsec"] < 1.6)]
    assert len(compact) >= 5
    for row in compact:
        data, _ = _read_cube(out / row["file"])
        assert data[1].sum() == pytest.approx(_flux(row["mag_r"]), rel=0.3)


def test_ellipticals_redder_than_spirals(release):
    out, _, table = release
    colour = {}
    for cls in ("elliptical", "spiral"):
        rows = table[table["morph_class"] == cls]
        cat_gr = np.mean(rows["mag_g"] - rows["mag_r"])
        measured = [_read_cube(out / f)[0].sum(axis=(1, 2)) for f in rows["file"]]
        meas_gr = np.mean([-2.5 * np.log10(f[0] / f[1]) for f in measured])
        colour[cls] = cat_gr, meas_gr
    assert colour["elliptical"][0] > colour["spiral"][0] + 0.2
    assert colour["elliptical"][1] > colour["spiral"][1] + 0.2
    assert 0.75 < colour["elliptical"][0] < 1.05


def test_edge_on_is_elongated_along_catalog_angle(release):
    _, _, table = release
    edge_on = table[table["morph_class"] == "edge_on"]
    for row in edge_on:
        index = int(row["source_id"].rsplit("_", 1)[1])
        galaxy = simulate_galaxy(SEED, index, size=96, noise=False)
        ixx, iyy, ixy = _moments(galaxy.image[1].astype(float))
        eig = np.linalg.eigvalsh([[ixx, ixy], [ixy, iyy]])
        assert eig[1] / eig[0] > 2.0
        # Major axis angle from +x, counter-clockwise; east of north is that minus 90 deg.
        pa = (np.degrees(0.5 * np.arctan2(2 * ixy, ixx - iyy)) - 90.0) % 180.0
        diff = abs(pa - row["position_angle_deg"]) % 180.0
        assert min(diff, 180.0 - diff) < 5.0


def test_noise_free_helper_matches_release(release):
    out, _, table = release
    galaxy = simulate_galaxy(SEED, 3, size=SIZE)
    data, _ = _read_cube(out / table["file"][3])
    assert galaxy.image.tobytes() == data.astype(np.float32).tobytes()
    assert galaxy.source_id == table["source_id"][3]


def test_sky_noise_level():
    noisy = simulate_galaxy(11, 0, size=128)
    clean = simulate_galaxy(11, 0, size=128, noise=False)
    for band, depth in enumerate((24.0, 23.4, 22.5)):
        sigma = pixel_noise_sigma(depth, noisy.psf_fwhm[band])
        sky = np.abs(clean.image[band]) < 0.3 * sigma
        residual = (noisy.image[band] - clean.image[band])[sky]
        assert residual.size > 5000
        assert np.std(residual) == pytest.approx(sigma, rel=0.1)


def test_ra_wraps_at_zero(tmp_path):
    table = Table.read(
        simulate_release(tmp_path, 12, 4, size=16, ra_center=359.9), format="ascii.csv"
    )
    ra = np.asarray(table["ra"], dtype=float)
    assert np.all((ra >= 0.0) & (ra < 360.0))
    assert np.any(ra < 1.0) and np.any(ra > 359.0)
    sep = SkyCoord(ra, table["dec"], unit="deg").separation(SkyCoord(359.9, 2.0, unit="deg"))
    assert np.all(sep.deg <= 1.0 + 1e-9)


def test_progress_called_once_per_galaxy(tmp_path):
    calls = []
    simulate_release(tmp_path, 3, 5, size=16, progress=calls.append)
    assert calls == [1, 1, 1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must be at least 1"),
        ({"n": -3}, "n must be at least 1"),
        ({"n": 2.5}, "n must be an integer"),
        ({"n": 1, "size": 15}, "size must be at least 16"),
        ({"n": 1, "seed": -1}, "seed must be at least 0"),
        ({"n": 1, "field_radius_deg": 0.0}, "field_radius_deg"),
        ({"n": 1, "dec_center": 91.0}, "dec_center"),
    ],
)
def test_bad_arguments_raise(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        simulate_release(tmp_path, **kwargs)
    assert not (tmp_path / "catalog.csv").exists()


def test_bars_and_rings_only_on_disks_in_the_drawn_shares():
    from galdb.sim.morphology import make_galaxy

    rng = np.random.default_rng(7)
    for cls in ("elliptical", "edge_on", "merger"):
        assert not any((g.bar or g.ring) for g in (make_galaxy(cls, rng) for _ in range(20)))
    spirals = [make_galaxy("spiral", rng) for _ in range(300)]
    lenticulars = [make_galaxy("lenticular", rng) for _ in range(300)]
    assert 0.3 < np.mean([g.bar for g in spirals]) < 0.5
    assert 0.17 < np.mean([g.ring for g in spirals]) < 0.33
    assert 0.17 < np.mean([g.bar for g in lenticulars]) < 0.33
    assert 0.22 < np.mean([g.ring for g in lenticulars]) < 0.38
    plain = next(g for g in spirals if not (g.bar or g.ring))
    both = next(g for g in spirals if g.bar and g.ring)
    assert len(both.components) == len(plain.components) + 2


def test_bar_and_ring_take_their_light_from_the_disk_at_its_colours():
    import galsim

    from galdb.sim.morphology import Component, _bar_and_ring, mag_to_nanomaggies

    disk = Component(galsim.Exponential(half_light_radius=2.0), (18.5, 18.0, 17.6))
    bulge = Component(galsim.DeVaucouleurs(half_light_radius=0.4), (20.0, 19.1, 18.6))
    total_r = float(mag_to_nanomaggies(18.0) + mag_to_nanomaggies(19.1))
    mag_r = 22.5 - 2.5 * np.log10(total_r)
    comps, bar, ring = _bar_and_ring(
        np.random.default_rng(0), (bulge, disk), 1, mag_r, 2.0, 0.8, 30.0, (1.0, 1.0)
    )
    assert bar and ring and len(comps) == 4 and comps[0] == bulge
    r_flux = sum(float(mag_to_nanomaggies(c.mags[1])) for c in comps)
    assert r_flux == pytest.approx(total_r, rel=1e-9)  # light moved, none added
    dimmed = comps[1].mags
    assert dimmed[0] - dimmed[1] == pytest.approx(0.5) and dimmed[1] > 18.0


def test_catalog_bar_and_ring_columns_match_the_model(release):
    _, _, table = release
    for row in table:
        model = simulate_galaxy(SEED, int(row["source_id"].split("_")[-1]), size=SIZE).model
        assert (row["bar"], row["ring"]) == (int(model.bar), int(model.ring))
