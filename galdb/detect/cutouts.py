"""Detections become galaxies: cutouts of a release's current detections, ready to ingest.

:func:`write_cutouts` cuts a square around every current detection of a detection release
(galaxies only by default) out of its field file, with the field's WCS moved to the cutout,
and writes a catalog in the layout ``galdb ingest`` reads (``source_id, ra, dec, file`` plus
the detection's columns). Then

    galdb ingest OUT --catalog OUT/catalog.csv --release R-galaxies

makes them galaxies, and embedding, heads and similarity search follow as for any release.
The source id ``<field>:<detection_id>`` ties each galaxy back to its detection row.

Detections are read in field order from a server-side cursor, one field file open at a
time; a detection whose square does not lie wholly inside its field is skipped and
counted. Files already written are kept, so a rerun resumes; they live under
``cutouts/r<run>-<size>px``, so another run or size never reuses them. The catalog is
written to a side file and renamed at the end.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg import sql

from galdb.detect.fields import FieldImage, field_paths, read_field
from galdb.detect.store import VIEWS
from galdb.errors import GaldbError
from galdb.files import streamed_csv, write_fits

CATALOG_COLUMNS = (
    "source_id", "ra", "dec", "file", "field", "detection_id", "x", "y", "score", "kind",
    "radius_px", "detection_run",
)  # fmt: skip


@dataclass(frozen=True)
class CutoutSummary:
    catalog: pathlib.Path
    written: int
    at_edge: int
    without_wcs: int


def write_cutouts(
    conn: psycopg.Connection,
    release: str,
    out: pathlib.Path,
    *,
    size: int = 64,
    kinds: tuple[str, ...] = ("galaxy",),
    min_score: float = 0.0,
    progress: Callable[[int], object] | None = None,
) -> CutoutSummary:
    """Write ``size``-pixel cutouts of ``release``'s current detections and their catalog
    under ``out``; return what was written and skipped. Reads only; does not commit."""
    if size < 16:
        raise GaldbError(f"cutout size {size} px: need at least 16")
    run = conn.execute(
        "SELECT d.current_run, r.fields_dir FROM galdb.detection_releases d "
        "JOIN galdb.detection_runs r ON r.run_id = d.current_run WHERE d.release = %s",
        (release,),
    ).fetchone()
    if run is None:
        raise GaldbError(f"no detection release {release!r} with a current run (galdb detect list)")
    run_id, fields_dir = run
    paths = {p.stem: p for p in field_paths(fields_dir)}
    # detection ids are per run, and a rerun may ask another size: both name the folder, so
    # a file kept from an earlier call is always the same square
    folder = f"cutouts/r{run_id}-{size}px"
    (out / folder).mkdir(parents=True, exist_ok=True)
    query = sql.SQL(
        "SELECT field, detection_id, x, y, ra, dec, score, kind, radius_px FROM {} "
        "WHERE kind = ANY(%s) AND score >= %s ORDER BY field, detection_id"
    ).format(sql.Identifier(VIEWS, release))
    written = at_edge = without_wcs = 0
    field: FieldImage | None = None
    catalog = out / "catalog.csv"
    with streamed_csv(catalog, CATALOG_COLUMNS) as writer, conn.cursor(name="cutouts") as cur:
        cur.itersize = 2000
        cur.execute(query, (list(kinds), min_score))
        for name, detection_id, x, y, ra, dec, score, kind, radius in cur:
            if field is None or field.name != name:
                if name not in paths:
                    raise GaldbError(f"field {name!r} of run {run_id} is not in {fields_dir}")
                field = read_field(paths[name])
            if progress is not None:
                progress(1)
            if ra is None:
                without_wcs += 1
                continue
            box = _box(field, x, y, size)
            if box is None:
                at_edge += 1
                continue
            rel = f"{folder}/{name}_{detection_id}.fits"
            if not (out / rel).exists():
                _write(out / rel, field, box, size, f"{name}:{detection_id}")
            writer.writerow(
                [f"{name}:{detection_id}", f"{ra:.7f}", f"{dec:.7f}", rel, name, detection_id,
                 f"{x:.2f}", f"{y:.2f}", f"{score:.4f}", kind, f"{radius:.2f}", run_id]
            )  # fmt: skip
            written += 1
    return CutoutSummary(catalog, written, at_edge, without_wcs)


def _box(field: FieldImage, x: float, y: float, size: int) -> tuple[int, int] | None:
    """Lower-left pixel of the ``size`` square centred on (x, y), or None off the field."""
    x0, y0 = int(round(x)) - size // 2, int(round(y)) - size // 2
    _, height, width = field.pixels.shape
    if x0 < 0 or y0 < 0 or x0 + size > width or y0 + size > height:
        return None
    return x0, y0


def _write(path: pathlib.Path, field: FieldImage, box: tuple[int, int], size: int, source: str):
    x0, y0 = box
    cube = field.pixels[:, y0 : y0 + size, x0 : x0 + size]
    header = field.wcs[y0 : y0 + size, x0 : x0 + size].to_header()
    header["BANDS"] = "".join(field.bands)
    header["OBJECT"] = source
    write_fits(path, np.ascontiguousarray(cube), header)
