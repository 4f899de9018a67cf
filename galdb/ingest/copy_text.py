"""Catalog rows rendered as lines of COPY text for ``galdb.galaxies``, a chunk at a time.

The in-process loader turns each row into a :class:`~galdb.ingest.records.Galaxy` and lets
psycopg format it; for a catalog without a file column, that per-row work can run in another
process (:mod:`galdb.ingest.reader_process`) if its result is plain text. Here a chunk's
columns are checked with numpy (ids present, coordinates finite and in range) and each good
row becomes one line of PostgreSQL's text COPY format, in :data:`~galdb.ingest.loader.
GALAXY_COLUMNS` order. A row the vectorised check flags (or every row, when a coordinate
column is not numeric) goes through the same :func:`~galdb.ingest.catalog.catalog_galaxy` as
the in-process path, so it is kept or quarantined with the same code and message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.table import Table

from galdb.ingest.catalog import Columns, catalog_galaxy, column_values, props_json
from galdb.ingest.records import BadInput

# Text COPY escapes: backslash first, then the characters that end a field or a row.
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
# The pixel columns of a catalog-only row: pixel_uri .. shape, all NULL.
_NO_PIXELS = "\\N\t" * 6


@dataclass(slots=True)
class CopyLine:
    """A galaxy already rendered as one line of COPY text (what ``Candidate.load`` returns)."""

    source_id: str
    text: bytes

    def __call__(self) -> CopyLine:
        return self


@dataclass(slots=True)
class Failed:
    """A row that cannot become a galaxy: ``load`` raises its :class:`BadInput`."""

    code: str
    reason: str

    def __call__(self):
        raise BadInput(self.code, self.reason)


@dataclass
class RenderedRows:
    """Consecutive rows of one catalog: id, row number and outcome (line or failure) each."""

    source: str
    ids: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    lines: list[bytes | None] = field(default_factory=list)  # None where ``failed`` says why
    failed: dict[int, tuple[str, str]] = field(default_factory=dict)  # position -> (code, why)


def escape(text: str) -> str:
    """``text`` as a field of text COPY (backslash, tab, newline, carriage return escaped)."""
    return text.translate(_ESCAPES)


def render_chunk(
    table: Table,
    cols: Columns,
    path: Path,
    rows: Sequence[int],
    release_id: int,
    run_id: int,
) -> RenderedRows:
    """Render a chunk of a catalog without a file column (``cols.file`` is ``None``)."""
    if cols.file is not None:
        raise ValueError("render_chunk is for catalogs without a file column")
    ids = ["" if v is None else str(v).strip() for v in column_values(table, cols.id or "")]
    n = len(ids)
    extra = [name for name in table.colnames if name not in {cols.id, cols.ra, cols.dec}]
    props = props_json({name: column_values(table, name) for name in extra}, n)
    ra = dec = None
    good = np.array([bool(i) for i in ids], dtype=bool)
    if cols.ra is not None:
        ra, dec = _coordinate(table, cols.ra), _coordinate(table, cols.dec or "")
        if ra is None or dec is None:  # not numbers: every row through the exact check
            good[:] = False
        else:
            with np.errstate(invalid="ignore"):
                good &= np.isfinite(ra) & np.isfinite(dec)
                good &= (ra >= 0) & (ra <= 360) & (dec >= -90) & (dec <= 90)
            ra = np.where(ra == 360.0, 0.0, ra)
    out = RenderedRows(str(path), ids, list(rows))
    head, tail = f"{release_id}\t", f"\t{run_id}\n"
    ra_list = ra.tolist() if ra is not None else None
    dec_list = dec.tolist() if dec is not None else None
    lines: list[bytes | None] = []
    flagged = None if good.all() else _row_values(table, cols)
    for i, ok in enumerate(good.tolist()):
        if ok:
            coords = (ra_list[i], dec_list[i]) if ra_list else None
        else:  # the in-process check decides: same result, same code and reason
            try:
                galaxy = catalog_galaxy((ids[i], *flagged[i], None, props[i]), cols, path.parent)
            except BadInput as exc:
                lines.append(None)
                out.failed[i] = (str(exc.code), exc.reason)
                continue
            coords = None if galaxy.ra is None else (galaxy.ra, galaxy.dec)
        fields = f"{coords[0]!r}\t{coords[1]!r}\t" if coords else "\\N\t\\N\t"
        line = head + escape(ids[i]) + "\t" + fields + _NO_PIXELS + escape(props[i]) + tail
        lines.append(line.encode())
    out.lines = lines
    return out


def _coordinate(table: Table, name: str) -> np.ndarray | None:
    """A coordinate column as float64 with NaN where masked; ``None`` if it is not numeric."""
    col = table[name]
    if col.dtype.kind not in "fiu":
        return None
    values = np.asarray(col, dtype=float)
    if hasattr(col, "mask") and np.any(col.mask):
        values = np.where(np.asarray(col.mask), np.nan, values)
    return values


def _row_values(table: Table, cols: Columns) -> list[tuple]:
    """(ra, dec) of every row as the in-process path reads them."""
    n = len(table)
    ra = column_values(table, cols.ra) if cols.ra else [None] * n
    dec = column_values(table, cols.dec) if cols.dec else [None] * n
    return list(zip(ra, dec, strict=True))
