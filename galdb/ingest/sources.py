"""Turn what the user pointed at (a directory, a catalog, an HDF5 file) into a source.

A :class:`Source` is the candidates to load plus the input files whose checksums the run
records, and the settings that decide what those inputs become (:meth:`Source.settings`): a
completed run of the same bytes with the same settings lets the next run skip the source. The
format is detected from the path unless given:

* ``hdf5``: an ``.h5``/``.hdf5`` file of image arrays;
* ``catalog``: a table file, or a directory with ``--catalog``; rows may name cutout files;
* ``cutouts``: a directory of FITS/JPEG/PNG cutouts (or one FITS image file);
* ``legacysurvey``: a Tractor or sweep catalog whose galaxies' cutouts are fetched from the
  Legacy Surveys cutout service (never detected: named, or implied by its options).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from astropy.io import fits

from galdb.errors import GaldbError
from galdb.ingest import hdf5
from galdb.ingest.catalog import TABLE_SUFFIXES, Columns, catalog_candidates
from galdb.ingest.csv_chunks import check_encoding
from galdb.ingest.cutouts import directory_candidates, file_candidate, is_fits
from galdb.ingest.legacysurvey import LegacySurveyOptions, legacysurvey_candidates
from galdb.ingest.reader_process import CatalogJob
from galdb.ingest.records import FILE_CODES, Candidate, Code, Rejected
from galdb.ingest.runs import sha256_file
from galdb.ingest.walk import summarize

FORMATS = ("cutouts", "catalog", "hdf5", "legacysurvey")


@dataclass
class Source:
    """What an ingest reads: its format, its provenance and a way to stream candidates."""

    format: str
    path: Path
    checksum: str
    size_bytes: int
    total: int | None  # number of candidates when known up front (for the progress bar)
    candidates: Callable[[], Iterator[Candidate | Rejected]]
    options: dict = field(default_factory=dict)  # every setting that changes the result
    # Quarantine codes that do not make a rerun skip: problems of files the checksum misses.
    retry_codes: frozenset[Code] = FILE_CODES
    # For a catalog: what a reader process needs (release id, run id, batch rows -> job).
    reader_job: Callable[[int, int, int], CatalogJob] | None = None

    def settings(self) -> dict:
        """The format and options, as JSON-ready values (stored in ``ingest_runs.options``)."""
        return {"format": self.format, **self.options}


def _has_table(path: Path) -> bool:
    try:
        with fits.open(path, memmap=True) as hdul:
            return any(isinstance(h, fits.BinTableHDU | fits.TableHDU) for h in hdul)
    except (OSError, ValueError):
        return False


def detect_format(path: Path, catalog: Path | None) -> str:
    if path.is_dir():
        return "catalog" if catalog else "cutouts"
    if path.suffix.lower() in hdf5.SUFFIXES:
        return "hdf5"
    if is_fits(path):
        return "catalog" if _has_table(path) else "cutouts"
    if path.suffix.lower() in TABLE_SUFFIXES:
        return "catalog"
    raise GaldbError(
        f"{path}: cannot tell the format; give --format ({', '.join(FORMATS)}), "
        "a directory of cutouts, a catalog table or an HDF5 file"
    )


def _legacysurvey_source(path: Path, options: LegacySurveyOptions | None) -> Source:
    if options is None:
        raise GaldbError("--format legacysurvey needs a cutout cache directory (--cutouts DIR)")
    if path.is_dir():
        raise GaldbError(f"{path}: --format legacysurvey reads one Tractor or sweep FITS table")
    return Source(
        "legacysurvey",
        path,
        sha256_file(path),
        path.stat().st_size,
        None,
        lambda: legacysurvey_candidates(path, options),
        options.settings(),
        # Fetch failures are file codes: a rerun retries them; cached cutouts are not refetched.
    )


def open_source(
    path: Path,
    *,
    catalog: Path | None = None,
    fmt: str | None = None,
    columns: Columns | None = None,
    pixel_scale: float | None = None,
    bands: str | None = None,
    encoding: str = "utf-8",
    legacysurvey: LegacySurveyOptions | None = None,
) -> Source:
    """Resolve the user's input into a :class:`Source` (nothing is read beyond listings).

    A directory of cutouts is walked once here for its checksum (names and sizes), then again
    lazily when its candidates are read.
    """
    if not path.exists():
        raise GaldbError(f"{path}: no such file or directory")
    if catalog is not None and not catalog.exists():
        raise GaldbError(f"{catalog}: no such catalog file")
    if fmt is None and legacysurvey is not None:
        fmt = "legacysurvey"
    fmt = fmt or detect_format(path, catalog)
    if fmt not in FORMATS:
        raise GaldbError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "legacysurvey":
        return _legacysurvey_source(path, legacysurvey)
    columns = columns or Columns()
    options = {"columns": vars(columns), "pixel_scale": pixel_scale, "bands": bands}
    if fmt == "hdf5":
        return Source(
            fmt,
            path,
            sha256_file(path),
            path.stat().st_size,
            None,
            lambda: hdf5.hdf5_candidates(
                path, id_column=columns.id, pixel_scale=pixel_scale, bands=bands
            ),
            options,
            # The checksum covers every byte: only an unexpected read error is worth a retry.
            frozenset({Code.READ_FAILED}),
        )
    if fmt == "catalog":
        table = catalog or path
        base = path if path.is_dir() else table.parent
        encoding = check_encoding(encoding)
        return Source(
            fmt,
            table,
            sha256_file(table),
            table.stat().st_size,
            None,
            lambda: catalog_candidates(table, columns, base, encoding),
            {**options, "image_dir": str(base), "encoding": encoding},
            reader_job=lambda release_id, run_id, batch_rows: CatalogJob(
                table, columns, base, encoding, release_id, run_id, batch_rows
            ),
        )
    if not path.is_dir():
        return Source(
            fmt,
            path,
            sha256_file(path),
            path.stat().st_size,
            1,
            lambda: iter([file_candidate(path, path.parent)]),
            options,
        )
    listing = summarize(path)
    if listing.entries == 0:
        raise GaldbError(f"{path}: no files to ingest")
    return Source(
        fmt,
        path,
        listing.checksum,
        listing.size_bytes,
        listing.entries,
        lambda: directory_candidates(path),
        options,
    )
