"""Catalog tables (CSV, ECSV, FITS, Parquet, VOTable), read in chunks with astropy.

A catalog names, per row, a source id, optionally ra/dec and optionally the cutout file. The
column names are configurable (:class:`Columns`); when not given they are guessed from common
names. Every other column is kept in ``galaxies.props`` and can be queried in SQL.

CSV files are read by :mod:`galdb.ingest.csv_chunks` (bounded header, ``--encoding``, rows
that do not decode quarantined as ``encoding_error``); FITS tables stream from a memory map;
the other formats load whole, after what can be checked of their header. Every format is
held to :data:`~galdb.ingest.limits.MAX_COLUMNS`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from galdb.errors import GaldbError
from galdb.ingest.csv_chunks import Chunk, csv_chunks
from galdb.ingest.cutouts import inspect_cutout
from galdb.ingest.limits import MAX_COLUMNS, MAX_HEADER_BYTES
from galdb.ingest.records import BadInput, Candidate, Code, Galaxy, Rejected, check_coordinates

TABLE_SUFFIXES = {".csv", ".ecsv", ".fits", ".fit", ".parquet", ".vot", ".votable", ".xml"}
FITS_CHUNK_ROWS = 50_000
SHOWN_COLUMNS = 30  # column names an error message lists

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
                        f"(columns are: {_listing(names)})"
                    )
                chosen[role] = given
            else:
                chosen[role] = next((lower[g] for g in GUESSES[role] if g in lower), None)
        if chosen["id"] is None:
            raise GaldbError(
                f"{catalog}: cannot tell which column is the source id; name it with --id-col "
                f"(columns are: {_listing(names)})"
            )
        if (chosen["ra"] is None) != (chosen["dec"] is None):
            raise GaldbError(f"{catalog}: found only one of ra/dec; name both (--ra-col/--dec-col)")
        return Columns(**chosen)


def _listing(names: list[str]) -> str:
    if len(names) <= SHOWN_COLUMNS:
        return ", ".join(names)
    return ", ".join(names[:SHOWN_COLUMNS]) + f", … ({len(names):,} in all)"


def read_catalog(path: Path, encoding: str = "utf-8") -> Iterator[Chunk]:
    """Yield the catalog as consecutive :class:`~galdb.ingest.csv_chunks.Chunk` objects.

    CSV and FITS stream; the other formats load whole. ``encoding`` applies to CSV files.

    Raises
    ------
    GaldbError
        The file cannot be read as a table, or exceeds the header bounds of
        :mod:`galdb.ingest.limits`.
    """
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            chunks = csv_chunks(path, encoding)
        elif suffix in {".fits", ".fit"}:
            chunks = _fits_chunks(path)
        else:
            _check_header(path, suffix)
            table = Table.read(path)
            chunks = iter([Chunk(_bounded(table, path), range(1, len(table) + 1))])
        yield from chunks
    except (OSError, ValueError, TypeError) as exc:
        raise GaldbError(f"{path}: cannot read the catalog ({exc})") from exc


def read_chunks(path: Path) -> Iterator[Table]:
    """Yield the catalog as consecutive astropy Tables; a row that does not decode is an error.

    For readers that need every row (label import); ingest uses :func:`read_catalog`, which
    quarantines such rows instead.
    """
    for chunk in read_catalog(path):
        if chunk.undecodable or chunk.malformed:
            row, reason = (chunk.undecodable or chunk.malformed)[0]
            raise GaldbError(f"{path}: row {row}: {reason}")
        if chunk.table is not None:
            yield chunk.table


def _fits_chunks(path: Path) -> Iterator[Chunk]:
    with fits.open(path, memmap=True) as hdul:
        hdu = next((h for h in hdul if isinstance(h, fits.BinTableHDU | fits.TableHDU)), None)
        if hdu is None:
            raise GaldbError(f"{path}: no table HDU in this FITS file")
        if len(hdu.columns) > MAX_COLUMNS:
            raise GaldbError(_too_many(path, len(hdu.columns)))
        for start in range(0, len(hdu.data), FITS_CHUNK_ROWS):
            table = Table(hdu.data[start : start + FITS_CHUNK_ROWS])
            yield Chunk(table, range(start + 1, start + len(table) + 1))


def _check_header(path: Path, suffix: str) -> None:
    """Header bounds checked before a whole-file read: ECSV's header lines, Parquet's schema."""
    if suffix == ".ecsv":
        size = 0
        with path.open("rb") as fh:
            while line := fh.readline(MAX_HEADER_BYTES + 1):
                size += len(line)
                if size > MAX_HEADER_BYTES:
                    raise GaldbError(
                        f"{path}: the header is longer than {MAX_HEADER_BYTES:,} bytes; galdb "
                        f"reads catalogs of at most {MAX_COLUMNS:,} columns"
                    )
                if not line.startswith(b"#"):  # the line of column names ends the header
                    break
    elif suffix == ".parquet":
        import pyarrow.parquet as pq  # astropy's own Parquet reader needs it too

        n_columns = pq.ParquetFile(path).metadata.num_columns
        if n_columns > MAX_COLUMNS:
            raise GaldbError(_too_many(path, n_columns))


def _bounded(table: Table, path: Path) -> Table:
    if len(table.colnames) > MAX_COLUMNS:
        raise GaldbError(_too_many(path, len(table.colnames)))
    return table


def _too_many(path: Path, n_columns: int) -> str:
    return f"{path}: the catalog has {n_columns:,} columns; the limit is {MAX_COLUMNS:,}"


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


def catalog_candidates(
    path: Path, columns: Columns, base: Path, encoding: str = "utf-8"
) -> Iterator[Candidate | Rejected]:
    """One candidate per catalog row; file paths are resolved against ``base``.

    Work is done a chunk at a time, column by column (the JSON of the extra columns is built
    per column, not per row), so catalogs of millions of rows load at COPY speed. A row whose
    bytes do not decode in ``encoding`` is one ``encoding_error`` rejection, a row with more or
    fewer fields than the header one ``bad_row`` rejection.
    """
    resolved: Columns | None = None
    for chunk in read_catalog(path, encoding):
        for row, reason in chunk.undecodable:
            yield Rejected(str(path), f"row {row}", Code.ENCODING_ERROR, reason)
        for row, reason in chunk.malformed:
            yield Rejected(str(path), f"row {row}", Code.BAD_ROW, reason)
        if chunk.table is None:
            continue
        resolved = resolved or columns.resolve(list(chunk.table.colnames), path)
        yield from chunk_candidates(chunk.table, resolved, path, chunk.rows, base)


def chunk_candidates(
    table: Table, cols: Columns, path: Path, rows: Sequence[int], base: Path
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
        yield Candidate(row[0], source, rows[i], partial(catalog_galaxy, row, cols, base))


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


def catalog_galaxy(row: tuple, cols: Columns, base: Path) -> Galaxy:
    """The galaxy of one catalog row (id, ra, dec, file, props JSON); BadInput if it cannot be."""
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
