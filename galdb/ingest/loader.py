"""Bulk loading of candidates into ``galdb.galaxies`` with COPY, batch by batch.

Each batch is one transaction: the galaxies it inserts, the quarantine rows of its bad inputs
and the run's counters commit together. Before inspecting any pixels the loader asks which ids
of the batch are already stored, so re-ingesting or resuming skips stored galaxies without
opening their files.

Whatever goes wrong while one candidate is read becomes one quarantine row for it: a
:class:`~galdb.ingest.records.BadInput` keeps its code, any other exception is quarantined as
``read_failed`` with its type and message, and the run goes on. Ids longer than
:data:`~galdb.ingest.limits.MAX_ID_LENGTH` are quarantined as ``id_too_long`` before anything
is read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import psycopg

from galdb.ingest.copy_text import CopyLine
from galdb.ingest.limits import MAX_ID_LENGTH
from galdb.ingest.records import BadInput, Candidate, Code, Galaxy, Rejected, is_storable, storable
from galdb.ingest.runs import add_counts
from galdb.progress import NoProgress, Progress

GALAXY_COLUMNS = (
    "release_id",
    "source_id",
    "ra",
    "dec",
    "pixel_uri",
    "pixel_member",
    "pixel_index",
    "bands",
    "pixel_scale",
    "shape",
    "props",
    "ingest_run_id",
)
COPY_GALAXIES = f"COPY galdb.galaxies ({', '.join(GALAXY_COLUMNS)}) FROM STDIN"
COPY_QUARANTINE = (
    "COPY galdb.quarantine (run_id, release_id, source, item, code, reason) FROM STDIN"
)
KEEP_PROBLEMS = 50  # how many rejections the summary keeps for printing; all are in the table
MAX_REASON = 2000  # characters of a reason kept in galdb.quarantine (exception texts can be huge)


@dataclass
class LoadCounts:
    inserted: int = 0
    present: int = 0
    quarantined: int = 0
    problems: list[Rejected] = field(default_factory=list)


def _json(props: dict | str) -> str:
    if isinstance(props, str):
        return props
    try:
        return json.dumps(props, allow_nan=False, default=str)
    except ValueError:  # an infinity slipped through: JSON has no such number
        clean = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in props.items()
        }
        return json.dumps(clean, default=str)


def galaxy_row(g: Galaxy, release_id: int, run_id: int) -> tuple:
    p = g.pixels
    if p is None:  # a catalog-only row: the common case for big catalogs, kept short
        return (
            release_id,
            g.source_id,
            g.ra,
            g.dec,
            None,
            None,
            None,
            None,
            None,
            None,
            _json(g.props),
            run_id,
        )
    return (
        release_id,
        g.source_id,
        g.ra,
        g.dec,
        p.uri if p else None,
        p.member if p else None,
        p.index if p else None,
        p.bands if p else None,
        p.pixel_scale if p else None,
        list(p.shape) if p and p.shape else None,
        _json(g.props),
        run_id,
    )


class Loader:
    """Feeds candidates into one release for one ingest run.

    Parameters
    ----------
    conn : psycopg.Connection
        Owner connection (not autocommit); the loader commits once per batch.
    release_id, run_id : int
        The release written to and the run that writes.
    batch_size : int
        Candidates per transaction.
    """

    def __init__(
        self,
        conn: psycopg.Connection,
        release_id: int,
        run_id: int,
        *,
        batch_size: int = 2000,
        progress: Progress | None = None,
    ):
        self.conn, self.release_id, self.run_id = conn, release_id, run_id
        self.batch_size = batch_size
        self.progress = progress or NoProgress()
        self.counts = LoadCounts()

    def feed(self, candidates: Iterable[Candidate | Rejected]) -> int:
        """Load every candidate; return how many were fed."""
        batch: list[Candidate | Rejected] = []
        fed = 0
        for candidate in candidates:
            batch.append(candidate)
            if len(batch) >= self.batch_size:
                fed += self._load_batch(batch)
                batch = []
        if batch:
            fed += self._load_batch(batch)
        return fed

    def _stored(self, ids: list[str]) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT source_id, ingest_run_id FROM galdb.galaxies "
            "WHERE release_id = %s AND source_id = ANY(%s)",
            (self.release_id, ids),
        ).fetchall()
        return dict(rows)

    def _load_batch(self, batch: list[Candidate | Rejected]) -> int:
        ids = [
            c.source_id
            for c in batch
            if isinstance(c, Candidate)
            and c.source_id
            and len(c.source_id) <= MAX_ID_LENGTH
            and is_storable(c.source_id)
        ]
        stored = self._stored(ids) if ids else {}
        galaxies: list[Galaxy | CopyLine] = []
        rejected: list[Rejected] = []
        present = 0
        seen: set[str] = set()
        for c in batch:
            if isinstance(c, Rejected):
                rejected.append(c)
            elif len(c.source_id) > MAX_ID_LENGTH:
                rejected.append(
                    Rejected(
                        c.source,
                        c.where(),
                        Code.ID_TOO_LONG,
                        f"source id has {len(c.source_id):,} characters; "
                        f"the limit is {MAX_ID_LENGTH}",
                    )
                )
            elif not is_storable(c.source_id):
                reason = f"source id {storable(c.source_id)!r} is not valid UTF-8 text"
                rejected.append(Rejected(c.source, c.where(), Code.ENCODING_ERROR, reason))
            elif c.source_id in seen or stored.get(c.source_id) == self.run_id:
                rejected.append(
                    Rejected(
                        c.source,
                        c.where(),
                        Code.DUPLICATE_ID,
                        f"source id {c.source_id!r} appears more than once",
                    )
                )
            elif c.source_id in stored:
                present += 1
            else:
                try:
                    galaxies.append(c.load())
                    seen.add(c.source_id)
                except BadInput as exc:
                    rejected.append(Rejected(c.source, c.where(), exc.code, exc.reason))
                except Exception as exc:  # one unreadable input must not stop the run
                    reason = f"{type(exc).__name__}: {exc}"
                    rejected.append(Rejected(c.source, c.where(), Code.READ_FAILED, reason))
        inserted = self._copy_galaxies(galaxies, rejected)
        self._copy_quarantine(rejected)
        add_counts(
            self.conn,
            self.run_id,
            n_inserted=inserted,
            n_present=present,
            n_quarantined=len(rejected),
        )
        self.conn.commit()
        self._count(inserted, present, rejected)
        self.progress.advance(len(batch))
        return len(batch)

    def _count(self, inserted: int, present: int, rejected: list[Rejected]) -> None:
        self.counts.inserted += inserted
        self.counts.present += present
        self.counts.quarantined += len(rejected)
        room = KEEP_PROBLEMS - len(self.counts.problems)
        self.counts.problems.extend(rejected[: max(room, 0)])

    def _copy_galaxies(self, galaxies: list[Galaxy | CopyLine], rejected: list[Rejected]) -> int:
        if not galaxies:
            return 0
        try:
            with self.conn.transaction(), self.conn.cursor() as cur, cur.copy(COPY_GALAXIES) as cp:
                # lines rendered by the reader process go in as one block of text
                cp.write(b"".join(g.text for g in galaxies if isinstance(g, CopyLine)))
                for g in galaxies:
                    if not isinstance(g, CopyLine):
                        cp.write_row(galaxy_row(g, self.release_id, self.run_id))
            return len(galaxies)
        except psycopg.Error:
            # One bad row fails the whole COPY; keep the good ones by inserting one at a time.
            return self._insert_one_by_one(galaxies, rejected)

    def _insert_one_by_one(
        self, galaxies: list[Galaxy | CopyLine], rejected: list[Rejected]
    ) -> int:
        sql = (
            f"INSERT INTO galdb.galaxies ({', '.join(GALAXY_COLUMNS)}) "
            f"VALUES ({', '.join(['%s'] * len(GALAXY_COLUMNS))})"
        )
        inserted = 0
        for g in galaxies:
            try:
                with self.conn.transaction():
                    if isinstance(g, CopyLine):
                        with self.conn.cursor() as cur, cur.copy(COPY_GALAXIES) as cp:
                            cp.write(g.text)
                    else:
                        self.conn.execute(sql, galaxy_row(g, self.release_id, self.run_id))
                inserted += 1
            except psycopg.Error as exc:
                reason = (exc.diag.message_primary or str(exc)).strip()
                source = g.pixels.uri if isinstance(g, Galaxy) and g.pixels else ""
                rejected.append(Rejected(source, f"id {g.source_id}", Code.DB_REJECTED, reason))
        return inserted

    def _copy_quarantine(self, rejected: list[Rejected]) -> None:
        if not rejected:
            return
        with self.conn.cursor() as cur, cur.copy(COPY_QUARANTINE) as cp:
            for r in rejected:
                cp.write_row(
                    (
                        self.run_id,
                        self.release_id,
                        storable(r.source),
                        storable(r.item),
                        str(r.code),
                        storable(r.reason[:MAX_REASON]),
                    )
                )
