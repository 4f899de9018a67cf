"""CSV catalogs read a block of bytes at a time: bounded header, any encoding, bad bytes kept apart.

The header line is read with a bounded read and checked against
:data:`~galdb.ingest.limits.MAX_HEADER_BYTES` and :data:`~galdb.ingest.limits.MAX_COLUMNS`
before any row is parsed, so a file that is not a sensible catalog fails in milliseconds.
Rows are then read in blocks of about :data:`CSV_CHUNK_BYTES`, cut at line ends, decoded
with the catalog's encoding (``utf-8`` unless the user says otherwise; a UTF-8 byte-order mark
is dropped) and parsed by astropy's fast reader. A block that does not decode, or that astropy
cannot parse (a row with more or fewer fields than the header), is read line by line: the rows
that fail are reported with their row number and the others parsed, so one stray Latin-1 byte
or one broken row costs one row, not the catalog.

Rows are numbered from 1 after the header, blank lines not counted (as astropy skips them).
Quoted fields spanning lines are not supported (a row is a line).
"""

from __future__ import annotations

import codecs
import csv
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from astropy.io import ascii
from astropy.io.ascii.core import InconsistentTableError
from astropy.table import Table
from astropy.utils.exceptions import AstropyWarning

from galdb.errors import GaldbError
from galdb.ingest.limits import MAX_COLUMNS, MAX_HEADER_BYTES

CSV_CHUNK_BYTES = 8 * 1024 * 1024  # ~150k rows: bounds memory to ~150 MB


@dataclass
class Chunk:
    """Consecutive catalog rows: a table, each row's number, and rows that did not decode."""

    table: Table | None
    rows: Sequence[int]  # 1-based row number of each row of ``table``
    undecodable: list[tuple[int, str]] = field(default_factory=list)  # (row number, reason)
    malformed: list[tuple[int, str]] = field(default_factory=list)  # wrong number of fields


def check_encoding(encoding: str) -> str:
    """The codec's canonical name; a clear error for an unknown one."""
    try:
        return codecs.lookup(encoding).name
    except LookupError as exc:
        raise GaldbError(f"unknown encoding {encoding!r} (e.g. utf-8, latin-1, cp1252)") from exc


def csv_chunks(
    path: Path, encoding: str = "utf-8", chunk_bytes: int = CSV_CHUNK_BYTES
) -> Iterator[Chunk]:
    """Yield the rows of a CSV file as :class:`Chunk` objects (at least one, maybe empty).

    Raises
    ------
    GaldbError
        The header is too long, has too many columns or does not decode.
    """
    encoding = check_encoding(encoding)
    with path.open("rb") as fh:
        header = read_header(fh, path, encoding)
        numbered, carry, yielded = 0, b"", False
        while True:
            block = fh.read(chunk_bytes)
            data = carry + block
            if block:
                cut = data.rfind(b"\n") + 1
                if cut == 0:  # no line end yet: read on
                    carry = data
                    continue
                data, carry = data[:cut], data[cut:]
            if data.strip():
                chunk = _parse(header, data, numbered, encoding)
                numbered += len(chunk.rows) + len(chunk.undecodable) + len(chunk.malformed)
                yielded = True
                yield chunk
            if not block:
                break
        if not yielded:
            yield Chunk(_table(header, ""), range(0))


def read_header(fh, path: Path, encoding: str) -> str:
    """The header line, decoded, after checking its size and number of columns."""
    line = fh.readline(MAX_HEADER_BYTES + 1)
    if len(line) > MAX_HEADER_BYTES:
        raise GaldbError(
            f"{path}: the header line is longer than {MAX_HEADER_BYTES:,} bytes; galdb reads "
            f"catalogs of at most {MAX_COLUMNS:,} columns"
        )
    if encoding == "utf-8" and line.startswith(codecs.BOM_UTF8):
        line = line[len(codecs.BOM_UTF8) :]
    try:
        header = line.decode(encoding).rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise GaldbError(
            f"{path}: the header line is not valid {encoding} ({exc.reason} at byte "
            f"{exc.start}); give the file's encoding with --encoding"
        ) from exc
    if not header.strip():
        raise GaldbError(f"{path}: the first line is empty; a CSV catalog starts with its header")
    n_columns = len(next(csv.reader([header])))
    if n_columns > MAX_COLUMNS:
        raise GaldbError(
            f"{path}: the header has {n_columns:,} columns; the limit is {MAX_COLUMNS:,}"
        )
    return header


def _parse(header: str, data: bytes, numbered: int, encoding: str) -> Chunk:
    try:
        table = _table(header, data.decode(encoding))
    except (UnicodeDecodeError, InconsistentTableError):
        return _parse_lines(header, data, numbered, encoding)
    return Chunk(table, range(numbered + 1, numbered + len(table) + 1))


def _parse_lines(header: str, data: bytes, numbered: int, encoding: str) -> Chunk:
    good, rows, undecodable, malformed = [], [], [], []
    n_fields = len(next(csv.reader([header])))
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        numbered += 1
        try:
            text = line.decode(encoding)
        except UnicodeDecodeError as exc:
            undecodable.append(
                (
                    numbered,
                    f"bytes {exc.start}-{exc.end - 1} of the row are not valid {encoding} "
                    f"({exc.reason}); give the file's encoding with --encoding",
                )
            )
            continue
        found = len(next(csv.reader([text.rstrip("\r")]), []))
        if found != n_fields:
            malformed.append((numbered, f"{found} fields where the header has {n_fields}"))
            continue
        good.append(text)
        rows.append(numbered)
    table = _table(header, "\n".join(good)) if good else None
    if table is not None and len(table) != len(rows):  # a quoted field spanning lines
        rows = list(range(rows[0], rows[0] + len(table)))
    return Chunk(table, rows, undecodable, malformed)


def _table(header: str, text: str) -> Table:
    with warnings.catch_warnings():
        # a column of integers beyond int64 (e.g. 20-digit ids) is read as text, which keeps
        # every digit: what galdb wants, so astropy's warning about it is noise
        warnings.filterwarnings("ignore", "OverflowError converting", AstropyWarning)
        return ascii.read(header + "\n" + text, format="csv", guess=False, fast_reader=True)
