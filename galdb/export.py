"""Write query results as CSV, ECSV, FITS, Parquet or VOTable, chunk by chunk.

Column types come from PostgreSQL's types when they are known (``type_names``), else from the
values; NULLs become masked values, JSON and arrays become strings. Columns
galdb knows (:data:`COLUMN_META`: positions, separations, probabilities) carry their unit, UCD
and description, so VOTable readers such as TOPCAT and Aladin recognise positions; FITS keeps
the units (``TUNITn``; FITS has no standard keyword for UCDs), ECSV and Parquet keep all three
in astropy's metadata.

An output is written to a temporary file beside the target and renamed onto it only once
complete, so a failure never leaves a half-written file; an existing target is refused unless
``overwrite``. CSV, ECSV and VOTable are written as chunks arrive. FITS needs the row count and
string widths in its header, and astropy's Parquet layout (masks, string lengths) needs them in
its schema, so those two hold their rows until the end (``galdb sql`` bounds what it holds).
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

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
STREAMED = {"ascii.csv", "ascii.ecsv", "votable"}
"""Formats written chunk by chunk; the others hold their rows until the end."""

_KINDS = {
    "int2": "int",
    "int4": "int",
    "int8": "int",
    "oid": "int",
    "float4": "float",
    "float8": "float",
    "numeric": "float",
    "bool": "bool",
}


@dataclass(frozen=True)
class ColumnMeta:
    """What a known column means: unit (astropy string), UCD (IVOA) and a description."""

    unit: str | None
    ucd: str | None
    description: str


COLUMN_META = {
    "ra": ColumnMeta("deg", "pos.eq.ra;meta.main", "Right ascension (ICRS)"),
    "dec": ColumnMeta("deg", "pos.eq.dec;meta.main", "Declination (ICRS)"),
    "separation_deg": ColumnMeta("deg", "pos.angDistance", "Angular separation from the centre"),
    "sep_arcsec": ColumnMeta("arcsec", "pos.angDistance", "Angular separation from the centre"),
    "separation_arcsec": ColumnMeta(
        "arcsec", "pos.angDistance", "Angular separation from the centre"
    ),
    "pixel_scale": ColumnMeta("arcsec / pix", "instr.scale", "Pixel scale of the cutout"),
    "distance": ColumnMeta(None, None, "Cosine distance between embeddings (1 - similarity)"),
    "similarity": ColumnMeta(None, None, "Cosine similarity between embeddings"),
    "confidence": ColumnMeta(None, "stat.probability", "Probability of the predicted class"),
    "uncertainty": ColumnMeta(None, "stat.error", "One-sigma uncertainty of the value"),
}
_PROBABILITY = re.compile(r"p_([a-z0-9_]+)")


def column_meta(name: str) -> ColumnMeta | None:
    """Unit, UCD and description of a column galdb knows by name, else None."""
    if name in COLUMN_META:
        return COLUMN_META[name]
    if match := _PROBABILITY.fullmatch(name):
        return ColumnMeta(None, "stat.probability", f"Probability of class {match[1]}")
    return None


def to_table(
    columns: Sequence[str], rows: Sequence[tuple], type_names: Sequence[str] | None = None
) -> Table:
    """Build an astropy Table with the known columns' metadata (see :func:`column_meta`).

    ``type_names`` (PostgreSQL types) fix each column's type; without them it follows the values.
    """
    table = Table()
    for i, name in enumerate(columns):
        kind = _KINDS.get(type_names[i], "text") if type_names is not None else None
        column = _column([row[i] for row in rows], kind)
        if meta := column_meta(name):
            column.unit, column.description = meta.unit, meta.description
            if meta.ucd:
                column.meta["ucd"] = meta.ucd
        table[name] = column
    return table


def _column(values: list, kind: str | None) -> MaskedColumn:
    present = [v for v in values if v is not None]
    mask = [v is None for v in values]
    if kind is None:
        kind = _infer_kind(present)
    if kind == "bool":
        data = np.array([bool(v) for v in values], dtype=bool)
    elif kind == "int":
        data = np.array([0 if v is None else v for v in values], dtype=np.int64)
    elif kind == "float":
        data = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    else:
        data = np.array(["" if v is None else _text(v) for v in values], dtype=str)
    return MaskedColumn(data, mask=mask)


def _infer_kind(present: list) -> str:
    if present and all(isinstance(v, bool) for v in present):
        return "bool"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int"
    if present and all(isinstance(v, int | float | decimal.Decimal) for v in present):
        return "float"
    return "text"


def _text(value: object) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def output_format(path: Path) -> str:
    """The astropy format name for ``path``'s suffix (see :data:`FORMATS`)."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise GaldbError(
            f"cannot tell the output format of {path}: use one of {', '.join(sorted(FORMATS))}"
        )
    return fmt


class TableOutput:
    """A table file being written: checked and created at once, complete or absent at the end.

    Opening checks the format, refuses an existing ``path`` unless ``overwrite``, and creates
    the temporary file beside it (so a directory that does not exist or cannot be written is
    reported before any query runs). :meth:`write` takes the columns and an iterable of row
    chunks; leaving the ``with`` block without an error renames the file onto ``path``, with
    one removes it.

    Examples
    --------
    >>> with TableOutput(Path("cone.vot")) as out:                   # doctest: +SKIP
    ...     n = out.write(["ra", "dec"], [[(150.1, 2.2)]], ["float8", "float8"])
    """

    def __init__(self, path: Path, *, overwrite: bool = False) -> None:
        self.path, self.format = Path(path), output_format(Path(path))
        if self.path.is_dir():
            raise GaldbError(f"cannot write {self.path}: it is a directory")
        if self.path.exists() and not overwrite:
            raise GaldbError(f"{self.path} exists: give --force to replace it")
        parent = self.path.parent
        if not parent.is_dir():
            raise GaldbError(f"cannot write {self.path}: no directory {parent}")
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part", dir=parent)
        except OSError as exc:
            raise GaldbError(f"cannot write {self.path}: {exc.strerror} ({parent})") from exc
        os.close(fd)
        self._tmp = Path(tmp)
        self.rows_written = 0

    def __enter__(self) -> TableOutput:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)

    def write(
        self,
        columns: Sequence[str],
        chunks: Iterable[Sequence[tuple]],
        type_names: Sequence[str] | None = None,
    ) -> int:
        """Write every chunk of rows; return the number of rows written."""
        try:
            if self.format in STREAMED:
                self.rows_written = _write_text(self._tmp, self.format, columns, chunks, type_names)
            else:
                rows = [row for chunk in chunks for row in chunk]
                to_table(columns, rows, type_names).write(
                    self._tmp, format=self.format, overwrite=True
                )
                self.rows_written = len(rows)
        except (ValueError, TypeError, OSError) as exc:
            raise GaldbError(f"could not write {self.path} as {self.format}: {exc}") from exc
        return self.rows_written


def write_table(
    columns: Sequence[str], rows: Sequence[tuple], path: Path, *, overwrite: bool = True
) -> None:
    """Write rows to ``path`` (format from the suffix, see :data:`FORMATS`), all or nothing."""
    with TableOutput(path, overwrite=overwrite) as out:
        out.write(columns, [rows])


def _write_text(
    path: Path,
    fmt: str,
    columns: Sequence[str],
    chunks: Iterable[Sequence[tuple]],
    type_names: Sequence[str] | None,
) -> int:
    """CSV, ECSV, VOTable: astropy renders each chunk; its header is written once."""
    n, footer = 0, None
    with open(path, "w", encoding="utf-8", newline="") as fh:
        for chunk in chunks:
            if not chunk:
                continue
            head, body, foot = _render(to_table(columns, chunk, type_names), fmt)
            fh.write(body if footer is not None else head + body)
            footer, n = foot, n + len(chunk)
        if footer is None:  # no rows: the header of an empty table
            head, body, footer = _render(to_table(columns, [], type_names), fmt)
            fh.write(head + body)
        fh.write(footer)
    return n


def _render(table: Table, fmt: str) -> tuple[str, str, str]:
    """(header, rows, footer) of a table in a text format."""
    if fmt == "votable":
        text = _votable_text(table)
        if not len(table):
            return text, "", ""
        head, rest = text.split("<TABLEDATA>\n", 1)
        body, foot = re.split(r"(?=\n *</TABLEDATA>)", rest, maxsplit=1)
        return head + "<TABLEDATA>\n", body, foot
    text, head = io.StringIO(), io.StringIO()
    table.write(text, format=fmt)
    table[:0].write(head, format=fmt)
    return head.getvalue(), text.getvalue()[len(head.getvalue()) :], ""


def _votable_text(table: Table) -> str:
    from astropy.io.votable import from_table

    votable = from_table(table)
    for f in votable.get_first_table().fields:
        if f.datatype in ("char", "unicodeChar"):
            f.arraysize = "*"  # every chunk declares the same fields, whatever its widths
    out = io.BytesIO()
    votable.to_xml(out, tabledata_format="tabledata")
    return out.getvalue().decode("utf-8")
