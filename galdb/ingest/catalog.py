"""Catalog tables (CSV, ECSV, FITS, Parquet, VOTable), read in chunks with astropy.

A catalog names, per row, a source id, optionally ra/dec and optionally the cutout file. The
column names are configurable (:class:`Columns`); when not given they are guessed from common
names. Every other column is kept in ``galaxies.props`` and can be queried in SQL.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from astropy.io import ascii, fits
from astropy.table import Table

from galdb.errors import GaldbError
from galdb.ingest.cutouts import inspect_cutout
from galdb.ingest.records import BadInput, Candidate, Code, Galaxy, check_coordinates

TABLE_SUFFIXES = {".csv", ".ecsv", ".fits", ".fit", ".parquet", ".vot", ".votable", ".xml"}
CSV_CHUNK_BYTES = 8 * 1024 * 1024  # ~150k rows: bounds memory to ~150 MB
FITS_CHUNK_ROWS = 50_000

GUESSES = {
    "id": ("source_id", "id", "objid", "galaxy_id", "iauname", "name", "object_id", "targetid"),
    "ra": ("ra", "ra_deg", "raj2000", "ra_j2000"),
    "dec": ("dec", "dec_deg", "dej2000", "decj2000", "dec_j2000"),
    "file": ("file", "image_file", "filename", "file_name", "path", "file_loc", "image"),
}


@dataclass(frozen=True)
class Columns:
    """Which catalog columns hold the id, the position and the cutout file (``None``: guess)."""

    id: str | None = None
    ra: str | None = None
    dec: str | None = None
    file: str | None = None

    def resolve(self, names: list[str], catalog: Path) -> Columns:
        """Fill unset roles from :data:`GUESSES`; fail clearly if a named column is absent."""
        lower = {n.lower(): n for n in names}
        chosen = {}
        for role in ("id", "ra", "dec", "file"):
            given = getattr(self, role)
            if given is not None:
                if given not in names:
                    raise GaldbError(
                        f"{catalog}: no column {given!r} for the {role} "
                        f"(columns are: {', '.join(names)})"
                    )
                chosen[role] = given
            else:
                chosen[role] = next((lower[g] for g in GUESSES[role] if g in lower), None)
        if chosen["id"] is None:
            raise GaldbError(
                f"{catalog}: cannot tell which column is the source id; name it with --id-col "
                f"(columns are: {', '.join(names)})"
            )
        if (chosen["ra"] is None) != (chosen["dec"] is None):
            raise GaldbError(f"{catalog}: found only one of ra/dec; name both (--ra-col/--dec-col)")
        return Columns(**chosen)


def read_chunks(path: Path) -> Iterator[Table]:
    """Yield the catalog as consecutive astropy Tables; CSV and FITS stream, others load whole."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            yield from ascii.read(
                path,
                format="csv",
                guess=False,
                fast_reader={"chunk_size": CSV_CHUNK_BYTES, "chunk_generator": True},
            )
        elif suffix in {".fits", ".fit"}:
            yield from _fits_chunks(path)
        else:
            yield Table.read(path)
    except (OSError, ValueError, TypeError) as exc:
        raise GaldbError(f"{path}: cannot read the catalog ({exc})") from exc


def _fits_chunks(path: Path) -> Iterator[Table]:
    with fits.open(path, memmap=True) as hdul:
        hdu = next((h for h in hdul if isinstance(h, fits.BinTableHDU | fits.TableHDU)), None)
        if hdu is None:
            raise GaldbError(f"{path}: no table HDU in this FITS file")
        for start in range(0, len(hdu.data), FITS_CHUNK_ROWS):
            yield Table(hdu.data[start : start + FITS_CHUNK_ROWS])


def column_values(table: Table, name: str) -> list:
    """Plain Python values of a column; masked or NaN entries become ``None``."""
    col = table[name]
    values = col.tolist() if not hasattr(col, "mask") else col.filled(col.fill_value).tolist()
    if hasattr(col, "mask") and np.any(col.mask):
        mask = np.asarray(col.mask).tolist()
        values = [None if m else v for v, m in zip(values, mask, strict=True)]
    if values and isinstance(values[0], bytes):
        values = [v.decode().strip() if isinstance(v, bytes) else v for v in values]
    if col.dtype.kind == "f":
        values = [None if v is None or math.isnan(v) else v for v in values]
    return values


def catalog_candidates(path: Path, columns: Columns, base: Path) -> Iterator[Candidate]:
    """One candidate per catalog row; file paths are resolved against ``base``.

    Work is done a chunk at a time, column by column (the JSON of the extra columns is built
    per column, not per row), so catalogs of millions of rows load at COPY speed.
    """
    row_number = 0
    resolved: Columns | None = None
    for table in read_chunks(path):
        resolved = resolved or columns.resolve(list(table.colnames), path)
        yield from _chunk_candidates(table, resolved, path, row_number, base)
        row_number += len(table)


def _chunk_candidates(
    table: Table, cols: Columns, path: Path, first_row: int, base: Path
) -> Iterator[Candidate]:
    ids = ["" if v is None else str(v).strip() for v in column_values(table, cols.id or "")]
    ra = column_values(table, cols.ra) if cols.ra else None
    dec = column_values(table, cols.dec) if cols.dec else None
    files = column_values(table, cols.file) if cols.file else None
    extra = [n for n in table.colnames if n not in {cols.id, cols.ra, cols.dec, cols.file}]
    props = props_json({name: column_values(table, name) for name in extra}, len(table))
    source = str(path)
    n = len(ids)
    ra, dec = ra or [None] * n, dec or [None] * n
    files = files or [None] * n
    for i, row in enumerate(zip(ids, ra, dec, files, props, strict=True)):
        # item is the 1-based row number; the loader adds the id when it reports a problem
        yield Candidate(row[0], source, first_row + i + 1, partial(_galaxy, row, cols, base))


def props_json(columns: dict[str, list], n: int) -> list[str]:
    """The JSON object of each row's extra columns, built column by column."""
    if not columns:
        return ["{}"] * n
    encoded = []
    for name, values in columns.items():
        key = json.dumps(name) + ": "
        encoded.append([key + v for v in _encode(values)])
    return ["{" + ", ".join(parts) + "}" for parts in zip(*encoded, strict=True)]


def _encode(values: list) -> list[str]:
    """JSON text of each value; NaN and infinities (not JSON) become null."""
    kinds = {type(v) for v in values} - {type(None)}
    if kinds <= {float, int} and kinds:
        return ["null" if v is None or not math.isfinite(v) else repr(v) for v in values]
    if kinds <= {str}:
        cache: dict[str, str] = {}  # catalog strings repeat a lot (classes, bands, flags)
        return [
            "null" if v is None else cache.get(v) or cache.setdefault(v, json.dumps(v))
            for v in values
        ]
    return [json.dumps(v, default=str) for v in values]


def _galaxy(row: tuple, cols: Columns, base: Path) -> Galaxy:
    source_id, ra, dec, file, props = row
    if not source_id:
        raise BadInput(Code.MISSING_ID, f"the id column {cols.id!r} is empty")
    coords = None
    if cols.ra is not None:
        coords = check_coordinates(ra, dec, required=True)
    pixels = None
    if cols.file is not None:
        if file is None or str(file).strip() == "":
            raise BadInput(Code.FILE_MISSING, f"the file column {cols.file!r} is empty")
        pixels = inspect_cutout(base / str(file).strip())
    if coords is None and pixels is not None and pixels.ra is not None:
        coords = check_coordinates(pixels.ra, pixels.dec, required=False)
    ra, dec = coords if coords else (None, None)
    return Galaxy(source_id=source_id, ra=ra, dec=dec, pixels=pixels, props=props)
