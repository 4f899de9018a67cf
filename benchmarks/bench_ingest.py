"""Catalog ingest of 1M rows: rows/s (target >= 50,000) and the ratio against per-row ORM inserts.

Steps, all in one run against one fresh embedded server:

1. write a clustered catalog of ``--n`` rows with :func:`galdb.datasets.sky.write_catalog_csv`
   (its size and write time are reported apart; they are not ingest time) and a CSV of its
   first 20,000 rows;
2. galdb's :func:`galdb.ingest.ingest` of the 20k subset into release ``bench-20k-copy``;
3. the baseline: the same 20k rows inserted with the SQLAlchemy ORM, one INSERT per row
   (``session.add`` + ``session.flush``, commit every 1,000) into release ``bench-20k-orm``,
   through a class mapped on the *reflected* ``galdb.galaxies`` table;
4. the reference for the reader process: galdb's ingest of the whole catalog with
   ``reader="inline"`` (parsing and row formatting in the ingesting process, the path before
   the reader process) into ``bench-1m-inline``;
5. galdb's ingest of the whole catalog with ``reader="process"`` (a producer process parses
   the CSV and renders COPY text while this process streams it) into ``bench-1m``.

The 20k pair runs first, on an almost empty table, so both see the same table state. The
inline reference runs before the reader process, so the headline run meets the bigger table
(its indexes hold the reference's rows too): the ratio is, if anything, understated.

    python benchmarks/bench_ingest.py --n 1000000
    python benchmarks/bench_ingest.py --n 20000        # quick smoke run
"""

from __future__ import annotations

import cProfile
import csv
import itertools
import os
import pstats
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from _common import (
    CpuMeter,
    Figures,
    RssSampler,
    command_line,
    embedded_server,
    log,
    machine,
    parser,
    print_table,
    verdict,
)
from sqlalchemy import MetaData, Table, create_engine
from sqlalchemy.orm import DeclarativeBase, Session

from galdb.datasets.sky import write_catalog_csv
from galdb.db.connect import connect, sqlalchemy_url
from galdb.ingest import IngestSummary, ingest
from galdb.ingest.runs import ensure_release

TARGET_ROWS_PER_S = 50_000
SUBSET = 20_000
ORM_COMMIT_EVERY = 1_000
SURVEY = "galdb-bench"


@dataclass
class Catalog:
    """The synthetic catalog files and what writing them cost."""

    full: Path
    subset: Path
    rows: int
    write_seconds: float
    size_mib: float


class LogProgress:
    """A :class:`galdb.progress.Progress` that prints a line every ``every`` rows."""

    def __init__(self, label: str, every: int = 100_000):
        self.label, self.every, self.done, self.next = label, every, 0, every

    def start(self, total: int | None, description: str = "") -> None:
        log(f"{self.label}: started")

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.done >= self.next:
            log(f"{self.label}: {self.done:,} rows")
            self.next += self.every


def write_catalogs(workdir: Path, n: int, seed: int) -> Catalog:
    """Write the full catalog and a CSV of its first :data:`SUBSET` rows."""
    full, subset = workdir / f"catalog-{n}.csv", workdir / f"catalog-first-{SUBSET}.csv"
    log(f"writing a {n:,}-row clustered catalog to {full}")
    t0 = time.perf_counter()
    write_catalog_csv(full, n, seed)
    seconds = time.perf_counter() - t0
    with full.open() as src, subset.open("w") as dst:
        dst.writelines(itertools.islice(src, SUBSET + 1))  # header + first rows
    log(f"catalog written in {seconds:.1f} s")
    return Catalog(full, subset, n, seconds, full.stat().st_size / 2**20)


@dataclass
class GaldbRun:
    """One galdb ingest: its summary and the CPU seconds of client and server backend."""

    summary: IngestSummary
    client_cpu: float
    server_cpu: float
    reader_cpu: float  # the reader process's (0 when the catalog is read inline)


def _children_cpu() -> float:
    """CPU seconds of this process's children that have been waited for."""
    t = os.times()
    return t.children_user + t.children_system


def galdb_ingest(
    settings, path: Path, release: str, profile: Path | None = None, reader: str = "auto"
) -> GaldbRun:
    """Run galdb's ingest of ``path`` into ``release``; optionally under cProfile."""
    with connect(settings) as conn:
        job = partial(
            ingest,
            conn,
            path,
            release,
            survey=SURVEY,
            progress=LogProgress(release),
            reader=reader,
        )
        meter, children = CpuMeter(conn.info.backend_pid), _children_cpu()
        if profile is None:
            summary = job()
        else:
            prof = cProfile.Profile()
            summary = prof.runcall(job)
            prof.dump_stats(profile)
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        client, server = meter.read()
        reader_cpu = _children_cpu() - children
    _check(summary)
    log(
        f"{release}: {summary.inserted:,} rows in {summary.seconds:.2f} s "
        f"= {summary.rows_per_second:,.0f} rows/s (CPU: Python {client:.1f} s, "
        f"server backend {server:.1f} s, reader process {reader_cpu:.1f} s)"
    )
    return GaldbRun(summary, client, server, reader_cpu)


def _check(summary: IngestSummary) -> None:
    if summary.quarantined or summary.present or summary.skipped_unchanged:
        raise SystemExit(f"unexpected ingest outcome: {summary}")


def reflected_galaxy_class(engine):
    """An ORM class mapped on ``galdb.galaxies`` as reflected from the database."""

    class Base(DeclarativeBase):
        pass

    table = Table("galaxies", MetaData(schema="galdb"), autoload_with=engine)
    return type("OrmGalaxy", (Base,), {"__table__": table})


def orm_insert(settings, path: Path, release: str) -> tuple[int, float]:
    """Insert the rows of ``path`` one ORM object and one INSERT at a time; (rows, seconds)."""
    with connect(settings) as conn:
        release_id = ensure_release(conn, release, SURVEY)
    engine = create_engine(sqlalchemy_url(settings))
    galaxy_cls = reflected_galaxy_class(engine)
    log(f"{release}: reflected galdb.galaxies ({len(galaxy_cls.__table__.columns)} columns)")
    rows = 0
    t0 = time.perf_counter()
    with Session(engine) as session, path.open(newline="") as fh:
        for rec in csv.DictReader(fh):
            session.add(_orm_object(galaxy_cls, rec, release_id))
            session.flush()
            rows += 1
            if rows % ORM_COMMIT_EVERY == 0:
                session.commit()
            if rows % 5_000 == 0:
                log(f"{release}: {rows:,} rows")
        session.commit()
    seconds = time.perf_counter() - t0
    engine.dispose()
    log(f"{release}: {rows:,} rows in {seconds:.2f} s = {rows / seconds:,.0f} rows/s")
    return rows, seconds


def _orm_object(galaxy_cls, rec: dict, release_id: int):
    props = {
        "mag_r": float(rec["mag_r"]),
        "redshift": float(rec["redshift"]),
        "morph": rec["morph"],
    }
    return galaxy_cls(
        release_id=release_id,
        source_id=rec["source_id"],
        ra=float(rec["ra"]),
        dec=float(rec["dec"]),
        props=props,
    )


def stored_counts(settings) -> dict[str, int]:
    """Galaxies per release, to check every benchmark stored what it claims."""
    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT r.name, count(*) FROM galdb.galaxies g JOIN galdb.releases r "
            "USING (release_id) GROUP BY 1 ORDER BY 1"
        ).fetchall()
    return dict(rows)


def release_label(n: int) -> str:
    """``bench-1m`` for a million rows, ``bench-20000`` otherwise."""
    return "bench-1m" if n == 1_000_000 else f"bench-{n}"


def run(args) -> dict:
    """Do every measurement; return the figures."""
    with embedded_server(args.home, args.keep) as settings:
        cat = write_catalogs(settings.home, args.n, args.seed)
        small = galdb_ingest(settings, cat.subset, "bench-20k-copy")
        orm_rows, orm_seconds = orm_insert(settings, cat.subset, "bench-20k-orm")
        inline = galdb_ingest(settings, cat.full, release_label(args.n) + "-inline", None, "inline")
        with RssSampler() as rss:  # this process's resident memory while the reader process runs
            big = galdb_ingest(settings, cat.full, release_label(args.n), args.profile, "process")
        rss_before, rss_after = rss.start, rss.peak
        counts = stored_counts(settings)
        log(f"stored galaxies per release: {counts}")
    return dict(
        cat=cat,
        small=small,
        orm_rate=orm_rows / orm_seconds,
        orm_rows=orm_rows,
        big=big,
        inline=inline,
        rss=(rss_before, rss_after),
    )


def report(f: dict, json_path: Path | None) -> None:
    """Print the figures and ratios; write the headline ones to ``json_path`` if given."""
    cat, orm_rate = f["cat"], f["orm_rate"]
    small, big, inline = f["small"].summary, f["big"].summary, f["inline"].summary
    rss_before, rss_after = f["rss"]
    rows = [
        ("catalog rows", cat.rows),
        ("catalog CSV size (MiB)", round(cat.size_mib, 1)),
        ("catalog CSV write time (s, not ingest)", round(cat.write_seconds, 2)),
        (
            f"galdb ingest, all {big.inserted:,} rows (reader process): seconds",
            round(big.seconds, 2),
        ),
        ("  CPU seconds in the ingesting process (ids, COPY data)", round(f["big"].client_cpu, 1)),
        ("  CPU seconds in the reader process (parse, render)", round(f["big"].reader_cpu, 1)),
        ("  CPU seconds in the server backend", round(f["big"].server_cpu, 1)),
        (
            f"galdb ingest, all {big.inserted:,} rows (reader process): rows/s",
            round(big.rows_per_second),
        ),
        (f"  target >= {TARGET_ROWS_PER_S:,} rows/s", target(big.rows_per_second)),
        ("reference: same catalog, reader inline: seconds", round(inline.seconds, 2)),
        ("  CPU seconds in Python (reading, rows, COPY data)", round(f["inline"].client_cpu, 1)),
        ("  CPU seconds in the server backend", round(f["inline"].server_cpu, 1)),
        ("reference: same catalog, reader inline: rows/s", round(inline.rows_per_second)),
        ("ratio reader process / inline", f"{big.rows_per_second / inline.rows_per_second:,.2f}x"),
        (f"galdb ingest, {small.inserted:,}-row subset: rows/s", round(small.rows_per_second)),
        (f"ORM one INSERT per row, {f['orm_rows']:,} rows: rows/s", round(orm_rate)),
        ("ratio galdb / ORM (same subset)", f"{small.rows_per_second / orm_rate:,.1f}x"),
        ("ratio galdb all rows / ORM subset", f"{big.rows_per_second / orm_rate:,.1f}x"),
        ("RSS at the start of the full ingest (MiB)", round(rss_before, 1)),
        ("peak RSS during the full ingest (MiB)", round(rss_after, 1)),
        ("  growth during the full ingest (MiB)", round(rss_after - rss_before, 1)),
    ]
    print_table(f"Catalog ingest -- {command_line()}", ("figure", "value"), rows)
    print(f"machine at the end: {machine()}")
    figures = Figures("bench_ingest.py")
    figures.add(
        f"ingest of {big.inserted:,} catalog rows (reader process)",
        big.rows_per_second,
        "rows/s",
        target=TARGET_ROWS_PER_S,
        reference=inline.rows_per_second,
        reference_name="same catalog, reader inline (in-process parsing)",
    )
    figures.add(
        f"ingest of {small.inserted:,} rows",
        small.rows_per_second,
        "rows/s",
        reference=orm_rate,
        reference_name="SQLAlchemy ORM, one INSERT per row, same rows",
    )
    figures.add(
        "memory growth of the ingesting process during the full ingest",
        rss_after - rss_before,
        "MiB",
        better="lower",
    )
    figures.write(json_path)


def target(rows_per_second: float) -> str:
    """The verdict on the rows/s target."""
    return verdict(rows_per_second >= TARGET_ROWS_PER_S)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--profile", type=Path, help="cProfile the full ingest into this file")
    args = p.parse_args()
    report(run(args), args.json)


if __name__ == "__main__":
    main()
