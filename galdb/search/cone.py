"""Cone search: galaxies within a radius of a sky position, nearest first.

The work is done by the SQL function ``galdb.cone_search(ra, dec, radius_deg)`` (made by
migration 0001, ``migrations/versions/0001_foundation.py``), so the CLI, the library
and psql users share one implementation.

>>> cone_search_sql()                                          # doctest: +NORMALIZE_WHITESPACE
'SELECT c.galaxy_id, c.separation_deg * 3600.0 AS separation_arcsec, g.source_id, r.name AS
release, g.ra, g.dec, g.props FROM galdb.cone_search(%(ra)s, %(dec)s, %(radius)s) AS c JOIN
galdb.galaxies AS g USING (galaxy_id) JOIN galdb.releases AS r USING (release_id)
ORDER BY c.separation_deg, c.galaxy_id'
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from astropy import units as u

from galdb.errors import GaldbError
from galdb.ingest.runs import release_id_of


@dataclass(frozen=True)
class ConeMatch:
    """One galaxy found by a cone search."""

    galaxy_id: int
    separation_arcsec: float
    source_id: str
    release: str
    ra: float
    dec: float
    props: dict


def parse_angle(text: str) -> float:
    """An angle with its unit, such as ``2arcmin``, ``30 arcsec`` or ``0.5deg``, in degrees.

    >>> parse_angle("90arcmin")
    1.5
    """
    try:
        quantity = u.Quantity(text)
        if quantity.unit == u.dimensionless_unscaled:
            raise ValueError("no unit")
        return float(quantity.to_value(u.deg))
    except (TypeError, ValueError, u.UnitsError) as exc:
        raise GaldbError(
            f"cannot read the angle {text!r}: give a number with a unit, e.g. 2arcmin, 30arcsec"
        ) from exc


def cone_search_sql(release: bool = False) -> str:
    """The SQL :func:`cone_search` runs (optionally restricted to one release)."""
    where = " WHERE r.name = %(release)s" if release else ""
    return (
        "SELECT c.galaxy_id, c.separation_deg * 3600.0 AS separation_arcsec, g.source_id, "
        "r.name AS release, g.ra, g.dec, g.props "
        "FROM galdb.cone_search(%(ra)s, %(dec)s, %(radius)s) AS c "
        "JOIN galdb.galaxies AS g USING (galaxy_id) "
        f"JOIN galdb.releases AS r USING (release_id){where} "
        "ORDER BY c.separation_deg, c.galaxy_id"
    )


def cone_search(
    conn: psycopg.Connection,
    ra: float,
    dec: float,
    radius_deg: float,
    *,
    release: str | None = None,
    limit: int | None = None,
) -> list[ConeMatch]:
    """Galaxies within ``radius_deg`` of (``ra``, ``dec``), nearest first, exact separations."""
    if not -90.0 <= dec <= 90.0:
        raise GaldbError(f"dec={dec} is outside -90..90 degrees")
    if not 0.0 < radius_deg <= 180.0:
        raise GaldbError(f"radius {radius_deg} deg must be > 0 and <= 180 deg")
    if release is not None:
        release_id_of(conn, release)  # an unknown release is an error, not 0 rows
    query = cone_search_sql(release is not None)
    if limit is not None:
        query += f" LIMIT {int(limit)}"
    params = {"ra": ra % 360.0, "dec": dec, "radius": radius_deg, "release": release}
    rows = conn.execute(query, params).fetchall()
    return [ConeMatch(*row) for row in rows]
