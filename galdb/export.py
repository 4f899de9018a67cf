"""Write query results as CSV, ECSV, FITS, Parquet or VOTable through astropy."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy.table import MaskedColumn, Table

from galdb.errors import GaldbError

FORMATS = {
    ".csv": "ascii.csv",
    ".ecsv": "ascii.ecsv",
    ".fits": "fits",
    ".fit": "fits",
    ".parquet": "parquet",
    ".vot": "votable",
    ".votable": "votable",
    ".xml": "votable",
}


def to_table(columns: Sequence[str], rows: Sequence[tuple]) -> Table:
    """Build an astropy Table; NULLs become masked values, JSON and arrays become strings."""
    table = Table()
    for i, name in enumerate(columns):
        table[name] = _column([row[i] for row in rows])
    return table


def _column(values: list) -> MaskedColumn:
    present = [v for v in values if v is not None]
    mask = [v is None for v in values]
    if present and all(isinstance(v, bool) for v in present):
        data = np.array([bool(v) for v in values], dtype=bool)
    elif present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        data = np.array([0 if v is None else v for v in values], dtype=np.int64)
    elif present and all(isinstance(v, int | float | decimal.Decimal) for v in present):
        data = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    else:
        data = np.array(["" if v is None else _text(v) for v in values], dtype=str)
    return MaskedColumn(data, mask=mask)


def _text(value: object) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def write_table(columns: Sequence[str], rows: Sequence[tuple], path: Path) -> None:
    """Write rows to ``path``; the format follows the suffix (see :data:`FORMATS`)."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise GaldbError(
            f"cannot tell the output format of {path}: use one of {', '.join(sorted(FORMATS))}"
        )
    table = to_table(columns, rows)
    try:
        table.write(path, format=fmt, overwrite=True)
    except (ValueError, TypeError) as exc:
        raise GaldbError(f"could not write {path} as {fmt}: {exc}") from exc
