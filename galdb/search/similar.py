"""Similarity search: the galaxies whose embeddings are nearest a query vector.

The query is a stored galaxy's vector, the nearest catalog galaxy to a position, or an image
embedded on the fly. Filters (release, a catalog-column range, a cone) are applied in SQL
with pgvector's iterative index scans, so a filtered query still returns ``k`` rows when ``k``
rows match; if the index scan gives up first (very rare matches), an exact scan of the matching
rows takes over. Detections of the same object (within ``dedup_arcsec`` of a galaxy already
kept, e.g. from overlapping releases) are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import psycopg
from astropy.coordinates import angular_separation
from pgvector import HalfVector
from pgvector.psycopg import register_vector

from galdb.errors import GaldbError
from galdb.lvm.pixels import PixelRef, pixel_columns
from galdb.lvm.registry import ModelRecord
from galdb.search.cone import cone_search


@dataclass(frozen=True)
class Filters:
    """Restrictions on the neighbours returned (all optional)."""

    release: str | None = None
    column: str | None = None  # a catalog column (in props), e.g. "mag_r"
    column_min: float | None = None
    column_max: float | None = None
    cone: tuple[float, float, float] | None = None  # ra, dec, radius (deg)

    @property
    def any(self) -> bool:
        return bool(self.release or self.column or self.cone)


@dataclass(frozen=True)
class Neighbour:
    """One result: the galaxy, its cosine distance to the query, and where its pixels are."""

    galaxy_id: int
    distance: float
    source_id: str
    release: str
    ra: float | None
    dec: float | None
    props: dict
    pixels: PixelRef | None

    @property
    def similarity(self) -> float:
        return 1.0 - self.distance


def _where(f: Filters) -> str:
    clauses = ["TRUE"]
    if f.release:
        clauses.append("r.name = %(release)s")
    if f.column and f.column_min is not None:
        clauses.append("(g.props->>%(column)s)::float8 >= %(column_min)s")
    if f.column and f.column_max is not None:
        clauses.append("(g.props->>%(column)s)::float8 <= %(column_max)s")
    if f.cone:
        clauses.append(
            "g.galaxy_id IN (SELECT galaxy_id FROM galdb.cone_search("
            "%(cone_ra)s, %(cone_dec)s, %(cone_radius)s))"
        )
    return " AND ".join(clauses)


def search_sql(record: ModelRecord, filters: Filters, *, exact: bool = False) -> str:
    """The statement :func:`search` runs; ``exact`` disables the index (``+ 0`` on the key)."""
    distance = f"e.embedding::halfvec({record.embedding_dim}) <=> %(q)s::halfvec"
    order = f"({distance}) + 0" if exact else distance
    return (
        f"SELECT e.galaxy_id, ({distance})::float8 AS distance, g.source_id, r.name, g.ra, "
        f"g.dec, g.props, {pixel_columns('g')} "
        f"FROM galdb.{record.partition} AS e "
        "JOIN galdb.galaxies AS g USING (galaxy_id) "
        "JOIN galdb.releases AS r USING (release_id) "
        f"WHERE {_where(filters)} ORDER BY {order} LIMIT %(limit)s"
    )


def _params(vector: np.ndarray, filters: Filters, limit: int) -> dict:
    cone = filters.cone or (None, None, None)
    return {
        "q": HalfVector(vector),
        "limit": limit,
        "release": filters.release,
        "column": filters.column,
        "column_min": filters.column_min,
        "column_max": filters.column_max,
        "cone_ra": cone[0],
        "cone_dec": cone[1],
        "cone_radius": cone[2],
    }


def search(
    conn: psycopg.Connection,
    record: ModelRecord,
    vector: np.ndarray,
    *,
    k: int = 10,
    filters: Filters | None = None,
    exclude: set[int] | None = None,
    dedup_arcsec: float | None = 1.0,
    ef_search: int | None = None,
) -> list[Neighbour]:
    """The ``k`` nearest galaxies to ``vector`` that pass ``filters``, nearest first."""
    filters = filters or Filters()
    exclude = exclude or set()
    register_vector(conn)
    # Ask for spares: excluded ids and near-duplicates are removed afterwards.
    limit = 2 * k + len(exclude) + 10
    with conn.transaction():
        conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
        if ef_search:
            conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
        rows = conn.execute(search_sql(record, filters), _params(vector, filters, limit)).fetchall()
        if len(rows) < limit and filters.any:
            rows = conn.execute(
                search_sql(record, filters, exact=True), _params(vector, filters, limit)
            ).fetchall()
    found = [
        Neighbour(*row[:7], PixelRef.from_row(row[7:])) for row in rows if row[0] not in exclude
    ]
    return _dedup(found, dedup_arcsec)[:k]


def _dedup(found: list[Neighbour], arcsec: float | None) -> list[Neighbour]:
    if not arcsec:
        return found
    kept: list[Neighbour] = []
    limit = arcsec / 3600.0
    for n in found:
        if n.ra is None or not any(
            m.ra is not None and _sep_deg(n.ra, n.dec, m.ra, m.dec) < limit for m in kept
        ):
            kept.append(n)
    return kept


def _sep_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    return float(np.degrees(angular_separation(*np.radians([ra1, dec1, ra2, dec2]))))


def stored_vector(conn: psycopg.Connection, record: ModelRecord, galaxy_id: int) -> np.ndarray:
    """A galaxy's vector for the model; a clear error if it has none."""
    register_vector(conn)
    row = conn.execute(
        f"SELECT embedding FROM galdb.{record.partition} WHERE galaxy_id = %s", (galaxy_id,)
    ).fetchone()
    if row is None:
        raise GaldbError(f"galaxy {galaxy_id} has no embedding for {record.spec}: run galdb embed")
    return np.asarray(row[0].to_numpy(), dtype=np.float32)


def find_galaxy(conn: psycopg.Connection, ident: str) -> int:
    """A galaxy id from ``RELEASE::SOURCE_ID``, a source id unique across releases, or an id."""
    if "::" in ident:
        release, source_id = ident.split("::", 1)
        rows = conn.execute(
            "SELECT galaxy_id FROM galdb.catalog WHERE release = %s AND source_id = %s",
            (release, source_id),
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT galaxy_id, release FROM galdb.catalog WHERE source_id = %s", (ident,)
        ).fetchall()
        if len(rows) > 1:
            releases = ", ".join(r[1] for r in rows)
            raise GaldbError(
                f"{ident!r} is in several releases ({releases}): write RELEASE::{ident}"
            )
        if not rows and ident.isdigit():
            rows = conn.execute(
                "SELECT galaxy_id FROM galdb.galaxies WHERE galaxy_id = %s", (int(ident),)
            ).fetchall()
    if not rows:
        raise GaldbError(f"no galaxy {ident!r} (give a source id, RELEASE::SOURCE_ID or an id)")
    return rows[0][0]


def nearest_galaxy(
    conn: psycopg.Connection, ra: float, dec: float, max_sep_deg: float = 1 / 60
) -> int:
    """The catalog galaxy nearest (ra, dec), within ``max_sep_deg``."""
    matches = cone_search(conn, ra, dec, max_sep_deg, limit=1)
    if not matches:
        raise GaldbError(
            f"no catalog galaxy within {max_sep_deg * 3600:.0f} arcsec of ({ra}, {dec})"
        )
    return matches[0].galaxy_id
