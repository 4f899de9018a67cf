"""``galdb search`` as one library call: resolve the query, search, draw the grid."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg

from galdb.db.connect import connect
from galdb.db.props import SAMPLE, describe, sample_columns
from galdb.db.settings import Settings
from galdb.errors import GaldbError
from galdb.ingest.runs import release_id_of
from galdb.lvm import registry
from galdb.lvm.pixels import PixelRef, parse_bands, pixel_columns
from galdb.search.cone import parse_angle
from galdb.search.grid import save_grid, tile
from galdb.search.similar import (
    Filters,
    Neighbour,
    find_galaxy,
    nearest_galaxy,
    search,
    stored_vector,
)


@dataclass(frozen=True)
class Query:
    """Exactly one of: a galaxy (source id), a position, or an image file."""

    like: str | None = None
    position: tuple[float, float] | None = None
    image: Path | None = None


@dataclass
class SearchResult:
    description: str
    query_galaxy: int | None
    neighbours: list[Neighbour] = field(default_factory=list)


def _query_vector(conn, record, query: Query) -> tuple[np.ndarray, int | None, str]:
    if query.image is not None:
        from galdb.lvm.embed import embed_file

        loaded = registry.load_registered(conn, record)
        return embed_file(loaded, query.image), None, str(query.image)
    if query.position is not None:
        galaxy_id = nearest_galaxy(conn, *query.position)
        label = f"({query.position[0]}, {query.position[1]}) -> galaxy {galaxy_id}"
    else:
        galaxy_id = find_galaxy(conn, query.like or "")
        label = f"{query.like}"
    return stored_vector(conn, record, galaxy_id), galaxy_id, label


def run_search(
    settings: Settings,
    model: str,
    query: Query,
    *,
    k: int = 10,
    release: str | None = None,
    column: str | None = None,
    column_min: float | None = None,
    column_max: float | None = None,
    cone: tuple[float, float, str] | None = None,
    dedup: str | None = "1arcsec",
    ef_search: int | None = None,
    grid: Path | None = None,
) -> SearchResult:
    """Resolve ``query`` to a vector, return its ``k`` neighbours (not itself), draw a grid.

    Raises
    ------
    GaldbError
        If ``column`` comes without a bound or a bound without ``column``; or if nothing was
        found and no galaxy of the releases concerned has ``column`` (naming the columns seen
        in a bounded sample of them, see :mod:`galdb.db.props`).
    """
    bounded = column_min is not None or column_max is not None
    if bounded != (column is not None):
        raise GaldbError(
            "--column filters with --min and/or --max: give the column and at least one bound"
        )
    filters = Filters(
        release=release,
        column=column,
        column_min=column_min,
        column_max=column_max,
        cone=(cone[0], cone[1], parse_angle(cone[2])) if cone else None,
    )
    dedup_arcsec = parse_angle(dedup) * 3600 if dedup else None
    with connect(settings) as conn:
        if release is not None:
            release_id_of(conn, release)  # an unknown release is an error, not 0 rows
        record = registry.lookup(conn, model)
        vector, galaxy_id, label = _query_vector(conn, record, query)
        exclude = {galaxy_id} if galaxy_id is not None else set()
        try:
            found = search(
                conn,
                record,
                vector,
                k=k,
                filters=filters,
                exclude=exclude,
                dedup_arcsec=dedup_arcsec,
                ef_search=ef_search,
            )
        except psycopg.errors.InvalidTextRepresentation as exc:
            if column is None:
                raise
            # the range filter casts the column to a number in SQL
            raise GaldbError(
                f"--min/--max on the catalog column {column!r}: a value is not a number "
                f"({exc.diag.message_primary})"
            ) from exc
        if not found and column is not None:
            _check_column(conn, column, release)
        result = SearchResult(label, galaxy_id, found)
        if grid:
            _grid(conn, result, query, grid)
    return result


def _check_column(conn, column: str, release: str | None) -> None:
    """Explain an empty filtered answer when the column is unknown in the releases searched."""
    if release is None:
        release_ids, where = None, "any release"
    else:
        release_ids, where = [release_id_of(conn, release)], f"release {release!r}"
    columns = sample_columns(conn, release_ids)
    if column not in columns:
        raise GaldbError(
            f"no galaxy of {where} has the catalog column {column!r} (in up to {SAMPLE:,} "
            f"galaxies per release); columns there: {describe(columns)}"
        )


def _grid(conn, result: SearchResult, query: Query, out: Path) -> None:
    if result.query_galaxy is not None:
        *pixels, sid = conn.execute(
            f"SELECT {pixel_columns()}, source_id FROM galdb.galaxies WHERE galaxy_id = %s",
            (result.query_galaxy,),
        ).fetchone()
        first = (tile(PixelRef.from_row(pixels)), f"QUERY\n{sid}")
    else:
        from galdb.ingest.cutouts import inspect_cutout

        info = inspect_cutout(Path(query.image))
        first = (
            tile(PixelRef(str(query.image), info.member, None, parse_bands(info.bands))),
            f"QUERY\n{Path(query.image).name}",
        )
    tiles = [first] + [
        (
            tile(n.pixels),
            f"{i + 1}. {n.source_id}\nsim {n.similarity:.3f}",
        )
        for i, n in enumerate(result.neighbours)
    ]
    save_grid(tiles, out)
