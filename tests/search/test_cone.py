"""Cone search against a brute-force astropy separation, RA wrap and poles included."""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from galdb.datasets.sky import uniform_sphere
from galdb.errors import GaldbError
from galdb.ingest import runs
from galdb.search import cone_search, cone_search_sql, parse_angle


@pytest.fixture(scope="module")
def sky(settings):
    """20,000 uniform points plus dense patches at RA 0/360 and both poles."""
    from galdb.db.connect import connect

    rng = np.random.default_rng(42)
    ra, dec = uniform_sphere(20_000, rng)
    patches = [(0.0, 0.0), (359.95, 10.0), (0.0, 89.9), (180.0, -89.95), (90.0, 90.0)]
    for pra, pdec in patches:
        r, d = uniform_sphere(200_000, rng)
        near = SkyCoord(r * u.deg, d * u.deg).separation(SkyCoord(pra * u.deg, pdec * u.deg))
        keep = near < 1 * u.deg
        ra, dec = np.concatenate([ra, r[keep]]), np.concatenate([dec, d[keep]])
    ra = np.append(ra, [0.0, 359.9999999, 123.0, 77.0])  # exact edge values and both poles
    dec = np.append(dec, [0.0, 0.0, 90.0, -90.0])
    release = "cone-test-sky"
    with connect(settings) as conn:
        rid = runs.ensure_release(conn, release, "test")
        with (
            conn.cursor() as cur,
            cur.copy("COPY galdb.galaxies (release_id, source_id, ra, dec) FROM STDIN") as cp,
        ):
            for i, (a, b) in enumerate(zip(ra, dec, strict=True)):
                cp.write_row((rid, f"p{i}", float(a), float(b)))
        conn.commit()
    return release, ra, dec


CENTRES = [
    (10.0, 20.0, 2.0),  # ordinary
    (0.0, 0.0, 0.5),  # on RA = 0
    (359.95, 10.0, 0.3),  # wraps past 360
    (0.01, 10.0, 0.3),  # wraps below 0
    (0.0, 89.9, 0.5),  # contains the north pole
    (180.0, -89.95, 0.2),  # contains the south pole
    (90.0, 90.0, 0.1),  # centred on the pole
    (45.0, 88.0, 2.5),  # reaches over the pole
    (200.0, -30.0, 15.0),  # large
    (300.0, 5.0, 1 / 60),  # 1 arcmin
]


@pytest.mark.parametrize(("ra0", "dec0", "radius"), CENTRES)
def test_matches_brute_force(conn, sky, ra0, dec0, radius):
    release, ra, dec = sky
    found = cone_search(conn, ra0, dec0, radius, release=release)
    sep = SkyCoord(ra * u.deg, dec * u.deg).separation(SkyCoord(ra0 * u.deg, dec0 * u.deg)).deg
    inside = np.flatnonzero(sep <= radius)
    assert sorted(int(m.source_id[1:]) for m in found) == sorted(inside.tolist())
    for m in found:
        truth = sep[int(m.source_id[1:])] * 3600
        assert m.separation_arcsec == pytest.approx(truth, abs=1e-6)
    assert [m.separation_arcsec for m in found] == sorted(m.separation_arcsec for m in found)


def test_random_cones(conn, sky):
    release, ra, dec = sky
    coords = SkyCoord(ra * u.deg, dec * u.deg)
    rng = np.random.default_rng(7)
    for _ in range(25):
        (ra0,), (dec0,) = uniform_sphere(1, rng)
        radius = float(rng.choice([0.05, 1.0, 5.0]))
        found = {m.source_id for m in cone_search(conn, ra0, dec0, radius, release=release)}
        sep = coords.separation(SkyCoord(ra0 * u.deg, dec0 * u.deg)).deg
        assert found == {f"p{i}" for i in np.flatnonzero(sep <= radius)}


def test_uses_the_zone_index(conn, sky):
    plan = "\n".join(
        r[0]
        for r in conn.execute(
            "EXPLAIN SELECT g.galaxy_id FROM galdb.cone_zone_ranges(10, 20, 0.1) z "
            "JOIN galdb.galaxies g ON g.zone = z.zone AND g.ra BETWEEN z.ra_lo AND z.ra_hi"
        )
    )
    assert "galaxies_zone_ra_idx" in plan


def test_sql_function_is_the_same(conn, sky):
    release = sky[0]
    rows = conn.execute(
        cone_search_sql(release=True), {"ra": 0.0, "dec": 0.0, "radius": 0.5, "release": release}
    ).fetchall()
    assert [r[0] for r in rows] == [
        m.galaxy_id for m in cone_search(conn, 0.0, 0.0, 0.5, release=release)
    ]


@pytest.mark.parametrize(("ra0", "dec0", "radius"), [(0, 91, 1), (0, 0, 0), (0, 0, -1)])
def test_bad_arguments(conn, ra0, dec0, radius):
    with pytest.raises(GaldbError):
        cone_search(conn, ra0, dec0, radius)


def test_sql_function_rejects_bad_arguments(conn):
    import psycopg

    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute("SELECT * FROM galdb.cone_search(0, 95, 1)")
    conn.rollback()


@pytest.mark.parametrize(
    ("text", "deg"),
    [("2arcmin", 2 / 60), ("30 arcsec", 30 / 3600), ("0.5deg", 0.5), ("1.5 degree", 1.5)],
)
def test_parse_angle(text, deg):
    assert parse_angle(text) == pytest.approx(deg)


@pytest.mark.parametrize("text", ["2", "two arcmin", "3 kg"])
def test_parse_angle_needs_a_unit(text):
    with pytest.raises(GaldbError, match="unit"):
        parse_angle(text)


def test_stored_zone_matches_zone_of(conn, sky):
    """The generated column spells out galdb.zone_of(); the two must never disagree."""
    mismatches = conn.execute(
        "SELECT count(*) FROM galdb.galaxies WHERE dec IS NOT NULL AND zone <> galdb.zone_of(dec)"
    ).fetchone()[0]
    assert mismatches == 0


def test_unknown_release_is_an_error_not_zero_rows(conn):
    with pytest.raises(GaldbError, match="no release 'no-such-release'; known:"):
        cone_search(conn, 10.0, -5.0, 0.1, release="no-such-release")
