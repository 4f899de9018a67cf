"""Ingest survey releases: cutout directories, catalogs with images, HDF5 image arrays.

>>> from galdb.ingest import ingest                                    # doctest: +SKIP
>>> summary = ingest(conn, Path("release/"), "sim-dr1")                # doctest: +SKIP
>>> summary.inserted, summary.present, summary.quarantined             # doctest: +SKIP
(200, 0, 0)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from galdb.ingest import runs
from galdb.ingest.catalog import Columns
from galdb.ingest.legacysurvey import LegacySurveyOptions, Selection
from galdb.ingest.loader import Loader
from galdb.ingest.reader_process import process_candidates
from galdb.ingest.records import Code, Rejected
from galdb.ingest.sources import FORMATS, open_source
from galdb.progress import NoProgress, Progress

__all__ = [
    "FORMATS",
    "Code",
    "Columns",
    "IngestSummary",
    "LegacySurveyOptions",
    "READERS",
    "Selection",
    "ingest",
]

READERS = ("auto", "inline", "process")
#: Catalogs from this size up are read by a separate process under ``reader="auto"``: below
#: it, starting the process costs more than the overlap saves (it is one CSV chunk).
PROCESS_MIN_BYTES = 8 * 1024 * 1024


@dataclass
class IngestSummary:
    """What one ingest run did; every figure is also in ``galdb.ingest_runs``."""

    run_id: int
    release: str
    format: str
    source: str
    inserted: int = 0
    present: int = 0
    quarantined: int = 0
    seconds: float = 0.0
    skipped_unchanged: bool = False
    problems: list[Rejected] = field(default_factory=list)

    @property
    def stored_anything(self) -> bool:
        """False only when no input became a galaxy, now or in an earlier run."""
        return self.inserted + self.present > 0

    @property
    def rows_per_second(self) -> float:
        total = self.inserted + self.present + self.quarantined
        return total / self.seconds if self.seconds > 0 else 0.0


def ingest(
    conn: psycopg.Connection,
    path: Path,
    release: str,
    *,
    catalog: Path | None = None,
    fmt: str | None = None,
    columns: Columns | None = None,
    survey: str = "unspecified",
    pixel_scale: float | None = None,
    bands: str | None = None,
    encoding: str = "utf-8",
    batch_size: int = 5000,
    progress: Progress | None = None,
    legacysurvey: LegacySurveyOptions | None = None,
    reader: str = "auto",
) -> IngestSummary:
    """Ingest ``path`` into ``release``; resumable, idempotent, bad inputs quarantined.

    Parameters
    ----------
    conn : psycopg.Connection
        Owner connection, not in autocommit mode.
    path : Path
        A directory of cutouts, a catalog table, or an HDF5 file.
    release : str
        Release name; created (under ``survey``) on first use.
    catalog : Path, optional
        Catalog naming id, ra, dec and file per row, for a directory of images.
    columns : Columns
        Catalog column names for id/ra/dec/file (guessed when unset).
    encoding : str
        Text encoding of a CSV catalog; rows that do not decode are quarantined.
    legacysurvey : LegacySurveyOptions, optional
        For a Tractor/sweep catalog (format ``legacysurvey``): the selection, the cutout
        service settings and the cache directory the cutouts are fetched into.
    reader : {"auto", "inline", "process"}
        Where a catalog is parsed and its rows rendered: ``process``, a separate process
        (:mod:`galdb.ingest.reader_process`), so parsing overlaps with the server storing
        rows; ``inline``, this process; ``auto``, a process for catalogs of at least
        :data:`PROCESS_MIN_BYTES` on a machine with more than one CPU. Other formats are
        always read inline. The result is the same either way.

    An input is skipped at once when an earlier run finished it with the same bytes and
    settings, stored something and left no image-file problem to retry (see
    :mod:`galdb.ingest.runs`).
    """
    started = time.perf_counter()
    if reader not in READERS:
        raise ValueError(f"reader must be one of {READERS}, not {reader!r}")
    columns = columns or Columns()
    progress = progress or NoProgress()
    source = open_source(
        path.resolve(),
        catalog=catalog.resolve() if catalog else None,
        fmt=fmt,
        columns=columns,
        pixel_scale=pixel_scale,
        bands=bands,
        encoding=encoding,
        legacysurvey=legacysurvey,
    )
    release_id = runs.ensure_release(conn, release, survey)
    key = runs.settings_key(source.settings())
    options = {**source.options, "key": key}
    with runs.ingest_run(conn, release_id, str(source.path), source.format, options) as run_id:
        summary = IngestSummary(run_id, release, source.format, str(source.path))
        done = runs.completed_rows(
            conn, release_id, str(source.path), source.checksum, key, source.retry_codes
        )
        if done is not None:
            runs.add_counts(conn, run_id, n_present=done, n_files=1)
            conn.commit()
            summary.present, summary.skipped_unchanged = done, True
        else:
            candidates = _candidates(source, reader, release_id, run_id, batch_size)
            _load(conn, source, candidates, release_id, run_id, batch_size, progress, summary)
    summary.seconds = time.perf_counter() - started
    return summary


def _candidates(source, reader: str, release_id: int, run_id: int, batch_size: int):
    """The source's candidates, read in this process or by a reader process (``reader``)."""
    if source.reader_job is not None and (
        reader == "process"
        or (
            reader == "auto"
            and source.size_bytes >= PROCESS_MIN_BYTES
            and (os.cpu_count() or 1) > 1
        )
    ):
        return process_candidates(source.reader_job(release_id, run_id, batch_size))
    return source.candidates()


def _load(conn, source, candidates, release_id, run_id, batch_size, progress, summary) -> None:
    track = dict(
        release_id=release_id,
        run_id=run_id,
        path=str(source.path),
        sha=source.checksum,
        size=source.size_bytes,
    )
    runs.track_file(conn, **track)
    runs.add_counts(conn, run_id, n_files=1)
    conn.commit()
    progress.start(source.total, f"ingest {source.path.name}")
    loader = Loader(conn, release_id, run_id, batch_size=batch_size, progress=progress)
    try:
        fed = loader.feed(candidates)
    finally:
        if hasattr(candidates, "close"):  # stops a reader process now, not when collected
            candidates.close()
    runs.track_file(conn, **track, rows_done=fed, completed=True)
    conn.commit()
    counts = loader.counts
    summary.inserted, summary.present = counts.inserted, counts.present
    summary.quarantined, summary.problems = counts.quarantined, counts.problems
