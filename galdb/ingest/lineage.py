"""Lineage: a later data release of the same sky matched to an earlier one, galaxy by galaxy.

>>> summary = match_releases(conn, "bench-dr10", "bench-dr9")  # doctest: +SKIP
>>> summary.by_key, summary.by_position, summary.new, summary.not_found  # doctest: +SKIP
(900000, 30000, 70000, 70000)

Every galaxy of release NEW gets one row in ``galdb.galaxy_lineage`` (migration 0010):
``previous_id`` is its match in release OLD, ``matched_by`` says how, and ``lineage_id`` is
the galaxy_id of the chain's earliest galaxy (OLD's galaxies that had no row get one, as the
start of their chain), so ``galdb.lineage_of(galaxy_id)`` or ``WHERE lineage_id = X`` lists
one object across every release.

**What matches.** A pair (new, old) is a *candidate* when the two are within the radius
(default 1 arcsec). It is a *key* pair when their source ids agree after the release prefix
(:func:`key_sql`: ``release/brickid/objid`` → ``brickid/objid``; an id without ``/`` is its
own key), else a *position* pair. The match is one-to-one and greedy over the total order
(key pairs first, then by separation, then by new and old galaxy_id): a pair is accepted
when each side is the other's best among the pairs whose ends are both still free (the
"locally dominant" pairs of Preis's 1999 approximate matching algorithm). Repeating
that until no free pair is left gives exactly the greedy matching whatever the order in which
pages are visited, so the result does not depend on the page size or on where a killed run
stopped: a key match beats any position match, the closest pair wins, ties go to the lower
ids. An identical key farther apart than the radius is no match (an objid reused for
another object). A galaxy left unmatched (or without a position) starts its own lineage
(``matched_by = 'new'``); an old galaxy left unmatched is *not found again*.

**How it runs at scale.** Everything is set-based SQL over pages of galaxy_id ranges (never
a release in memory), in phases recorded in ``galdb.lineage_matches`` (``phase``, ``cursor``):

1. ``candidates``: for a page of NEW's galaxies, the OLD galaxies within the radius, found
   on the zone index as ``galdb.cone_search`` does (``galdb.cone_zone_ranges`` per galaxy,
   then the exact ``galdb.angular_separation``), go to ``galdb.lineage_candidates``;
2. ``assign``: passes over the candidate pages accept each pair that is the best of both
   its galaxies and delete the other pairs of those two, until every pair left is accepted
   (one pass, or a few where objects crowd within the radius);
3. ``write``: each page of NEW's galaxies gets its lineage row (upserted);
4. ``roots``: OLD's galaxies without a row start their chain;
5. ``descendants``: releases matched earlier to NEW (and theirs) take the lineage ids NEW now
   has (one statement per such release; nothing to do unless NEW was matched again);

then the candidates are deleted and the match is ``done``, with its counts.

Pages are ranges of ``page_size`` galaxy ids (a release's ids are close to contiguous; a
range scan of the primary key is a plan that cannot go wrong), so a page holds at most
``page_size`` galaxies.

**Commits as it goes**: each page commits with the cursor that says it is done, so a killed
match resumes at its next page (a page redone is idempotent: candidates are inserted ``ON
CONFLICT DO NOTHING``, lineage rows upserted). A finished match is reused while both
releases hold the same galaxies (count, first and last id, recorded when it started);
otherwise, or with another OLD or radius, the release is matched again from the start.
While a match runs, NEW's lineage rows may be a mix of the old and the new result.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import psycopg

from galdb.db import locks
from galdb.errors import GaldbError
from galdb.ingest.runs import release_id_of
from galdb.progress import NoProgress, Progress

DEFAULT_RADIUS_ARCSEC = 1.0
MAX_RADIUS_ARCSEC = 60.0
PAGE_SIZE = 50_000  # galaxy ids per page (one transaction each)
LOCK_NAMESPACE = locks.LINEAGE_MATCH  # (namespace, new release id): one match at a time
PHASES = ("candidates", "assign", "write", "roots", "descendants", "done")


def key_sql(column: str) -> str:
    """The match key of a source id in SQL: the id after its first ``/``."""
    return f"substr({column}, strpos({column}, '/') + 1)"


@dataclass(frozen=True)
class LineageSummary:
    """What a match of ``release`` against ``previous`` found (also in lineage_matches)."""

    release: str
    previous: str
    radius_arcsec: float
    by_key: int
    by_position: int
    new: int
    not_found: int
    reused: bool = False
    seconds: float = 0.0

    @property
    def matched(self) -> int:
        return self.by_key + self.by_position

    def as_dict(self) -> dict:
        return {**asdict(self), "seconds": round(self.seconds, 3)}


@dataclass
class _Match:
    """One row of ``galdb.lineage_matches``."""

    new_release_id: int
    old_release_id: int
    radius_arcsec: float
    status: str
    phase: str
    cursor: int
    fingerprint: dict
    counts: dict


_COLUMNS = (
    "new_release_id, old_release_id, radius_arcsec, status, phase, cursor, fingerprint, counts"
)


def earlier_release(conn: psycopg.Connection, release: str) -> str | None:
    """The release ``release`` is matched to by default: the newest release of the same
    survey created before it that was ingested from Legacy Surveys catalogs; None if none."""
    row = conn.execute(
        "SELECT o.name FROM galdb.releases n JOIN galdb.releases o "
        "ON o.survey_id = n.survey_id AND o.release_id <> n.release_id "
        "WHERE n.name = %s AND (o.created_at, o.release_id) < (n.created_at, n.release_id) "
        "AND EXISTS (SELECT 1 FROM galdb.ingest_runs r WHERE r.release_id = o.release_id "
        "            AND r.format = 'legacysurvey') "
        "ORDER BY o.created_at DESC, o.release_id DESC LIMIT 1",
        (release,),
    ).fetchone()
    return row[0] if row else None


def match_releases(
    conn: psycopg.Connection,
    new: str,
    old: str,
    *,
    radius_arcsec: float = DEFAULT_RADIUS_ARCSEC,
    page_size: int = PAGE_SIZE,
    redo: bool = False,
    lock_wait: float = 0.0,
    progress: Progress | None = None,
) -> LineageSummary:
    """Match every galaxy of release ``new`` to release ``old`` (see the module docstring).

    Commits as it goes (a page per transaction); resumes a killed match of the same
    releases and radius; returns the recorded result at once when nothing changed since the
    last match (``reused``), unless ``redo``.

    Raises
    ------
    GaldbError
        Unknown release, the same release twice, releases of different surveys, ``old``
        descending from ``new`` (a cycle), a radius outside (0, 60] arcsec, or another match
        of ``new`` still running after ``lock_wait`` seconds.
    """
    started = time.perf_counter()
    progress = progress or NoProgress()
    if not 0 < radius_arcsec <= MAX_RADIUS_ARCSEC:
        raise GaldbError(f"radius {radius_arcsec} arcsec: use more than 0 and at most 60 arcsec")
    if page_size < 1:
        raise GaldbError(f"page size {page_size}: use at least 1")
    new_id, old_id = _check_pair(conn, new, old)
    with _locked(conn, new_id, new, lock_wait):
        m, reused = _prepare(conn, new_id, old_id, radius_arcsec, redo)
        while m.phase != "done":
            _PHASE_RUNNERS[m.phase](conn, m, page_size, progress)
    counts = m.counts
    return LineageSummary(
        release=new,
        previous=old,
        radius_arcsec=radius_arcsec,
        by_key=counts["by_key"],
        by_position=counts["by_position"],
        new=counts["new"],
        not_found=counts["not_found"],
        reused=reused,
        seconds=time.perf_counter() - started,
    )


def _check_pair(conn: psycopg.Connection, new: str, old: str) -> tuple[int, int]:
    new_id, old_id = release_id_of(conn, new), release_id_of(conn, old)
    if new_id == old_id:
        raise GaldbError(f"cannot match release {new!r} to itself")
    surveys = dict(
        conn.execute(
            "SELECT r.release_id, s.name FROM galdb.releases r JOIN galdb.surveys s "
            "USING (survey_id) WHERE r.release_id = ANY(%s)",
            ([new_id, old_id],),
        ).fetchall()
    )
    if surveys[new_id] != surveys[old_id]:
        raise GaldbError(
            f"release {new!r} is of survey {surveys[new_id]!r} and {old!r} of "
            f"{surveys[old_id]!r}: lineage links releases of the same survey"
        )
    ancestors = conn.execute(
        "WITH RECURSIVE up(release_id) AS (SELECT %s::int UNION "
        "SELECT m.old_release_id FROM galdb.lineage_matches m JOIN up "
        "ON m.new_release_id = up.release_id) SELECT array_agg(release_id) FROM up",
        (old_id,),
    ).fetchone()[0]
    if new_id in ancestors:
        raise GaldbError(
            f"release {old!r} was matched (directly or through others) to {new!r}: matching "
            f"{new!r} to {old!r} would make a cycle; match {old!r} to another release first"
        )
    conn.commit()
    return new_id, old_id


@contextmanager
def _locked(conn: psycopg.Connection, release_id: int, name: str, wait: float) -> Iterator[None]:
    deadline = time.monotonic() + wait
    while not conn.execute(
        "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_NAMESPACE, release_id)
    ).fetchone()[0]:
        conn.rollback()
        if time.monotonic() >= deadline:
            raise GaldbError(f"another lineage match of release {name!r} is running")
        time.sleep(0.5)
    conn.commit()
    try:
        yield
    finally:
        conn.rollback()
        conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, release_id))
        conn.commit()


def _span(conn: psycopg.Connection, release_id: int) -> list[int]:
    """[count, first galaxy_id, last galaxy_id] of a release (0, 0, 0 when empty)."""
    n, first, last = conn.execute(
        "SELECT count(*), min(galaxy_id), max(galaxy_id) FROM galdb.galaxies WHERE release_id = %s",
        (release_id,),
    ).fetchone()
    return [n, first or 0, last or 0]


def _prepare(
    conn: psycopg.Connection, new_id: int, old_id: int, radius: float, redo: bool
) -> tuple[_Match, bool]:
    """The match to run: the recorded one when it is for the same releases, radius and
    galaxies (done: reused), else a fresh one. Commits."""
    fingerprint = {"new": _span(conn, new_id), "old": _span(conn, old_id)}
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM galdb.lineage_matches WHERE new_release_id = %s FOR UPDATE",
        (new_id,),
    ).fetchone()
    m = _Match(*row) if row else None
    same = (
        m is not None
        and (m.old_release_id, m.radius_arcsec, m.fingerprint) == (old_id, radius, fingerprint)
        and not redo
    )
    if same:
        conn.commit()
        return m, m.status == "done"
    conn.execute("DELETE FROM galdb.lineage_candidates WHERE new_release_id = %s", (new_id,))
    row = conn.execute(
        "INSERT INTO galdb.lineage_matches "
        "(new_release_id, old_release_id, radius_arcsec, fingerprint, cursor) "
        "VALUES (%(n)s, %(o)s, %(r)s, %(f)s, %(c)s) ON CONFLICT (new_release_id) DO UPDATE SET "
        "old_release_id = EXCLUDED.old_release_id, radius_arcsec = EXCLUDED.radius_arcsec, "
        "fingerprint = EXCLUDED.fingerprint, cursor = EXCLUDED.cursor, status = 'running', "
        "phase = 'candidates', counts = '{}', started_at = now(), finished_at = NULL "
        f"RETURNING {_COLUMNS}",
        {
            "n": new_id,
            "o": old_id,
            "r": radius,
            "f": json.dumps(fingerprint),
            "c": fingerprint["new"][1] - 1,
        },
    ).fetchone()
    conn.commit()
    return _Match(*row), False


def _save(conn: psycopg.Connection, m: _Match, **changes) -> None:
    """Update the match row (in the caller's transaction) and ``m``."""
    for name, value in changes.items():
        setattr(m, name, value)
    values = {k: json.dumps(v) if k == "counts" else v for k, v in changes.items()}
    sets = ", ".join(f"{k} = %({k})s" for k in values)
    conn.execute(
        f"UPDATE galdb.lineage_matches SET {sets} WHERE new_release_id = %(new_release_id)s",
        {**values, "new_release_id": m.new_release_id},
    )


def _next_phase(conn: psycopg.Connection, m: _Match, **changes) -> None:
    """Move to the phase after ``m.phase`` (cursor at the start of its release); commits."""
    phase = PHASES[PHASES.index(m.phase) + 1]
    side = "old" if phase == "roots" else "new"
    _save(conn, m, phase=phase, cursor=m.fingerprint[side][1] - 1, **changes)
    conn.commit()


def _pages(
    conn: psycopg.Connection,
    m: _Match,
    side: str,
    page_size: int,
    progress: Progress,
    description: str,
) -> Iterator[tuple[int, int]]:
    """The (after, upto] galaxy-id ranges of a release from the match's cursor on; the caller
    does a page's work, then this records the cursor and commits."""
    n, first, last = m.fingerprint[side]
    progress.start(last - first + 1 if n else 0, description)
    while m.cursor < last:
        after, upto = m.cursor, min(m.cursor + page_size, last)
        yield after, upto
        _save(conn, m, cursor=upto)
        conn.commit()
        progress.advance(upto - after)


def _run_pages(
    conn: psycopg.Connection,
    m: _Match,
    side: str,
    sql: str,
    params: dict,
    page_size: int,
    progress: Progress,
    description: str,
) -> None:
    """Run ``sql`` (parameters ``params`` and the page's ``after``, ``upto``) on each page."""
    for after, upto in _pages(conn, m, side, page_size, progress, description):
        conn.execute(sql, {**params, "after": after, "upto": upto})


_CANDIDATES = f"""
INSERT INTO galdb.lineage_candidates
    (new_release_id, new_id, old_id, by_key, separation_arcsec)
SELECT %(new)s, n.galaxy_id, o.galaxy_id,
       {key_sql("n.source_id")} = {key_sql("o.source_id")}, s.sep * 3600.0
FROM galdb.galaxies AS n
CROSS JOIN LATERAL galdb.cone_zone_ranges(n.ra, n.dec, %(radius)s) AS z
JOIN galdb.galaxies AS o ON o.zone = z.zone AND o.ra BETWEEN z.ra_lo AND z.ra_hi
CROSS JOIN LATERAL (SELECT galdb.angular_separation(n.ra, n.dec, o.ra, o.dec) AS sep) AS s
WHERE n.galaxy_id > %(after)s AND n.galaxy_id <= %(upto)s AND n.release_id = %(new)s
  AND n.ra IS NOT NULL AND o.release_id = %(old)s AND s.sep <= %(radius)s
ON CONFLICT DO NOTHING
"""


def _candidates(conn: psycopg.Connection, m: _Match, page_size: int, progress: Progress):
    params = {"new": m.new_release_id, "old": m.old_release_id, "radius": m.radius_arcsec / 3600}
    _run_pages(conn, m, "new", _CANDIDATES, params, page_size, progress, "lineage: pairs")
    conn.execute("ANALYZE galdb.lineage_candidates")  # it went from empty to its size
    _next_phase(conn, m)


# One step of the greedy one-to-one assignment on a page of new ids. Every candidate row
# not accepted has both ends free (when a pair is accepted, the other rows of its two
# galaxies are deleted), so a pair is accepted when it is the best row of its new galaxy
# and no row of its old galaxy is better. The order of pairs: key pairs first, then the
# separation, then the new and the old galaxy_id. Written as index lookups per row of the
# page (a nested anti-join), a plan that does not depend on the planner's estimates.
_ACCEPT = """
WITH best_new AS (
    SELECT DISTINCT ON (c.new_id) c.new_id, c.old_id, c.by_key, c.separation_arcsec
    FROM galdb.lineage_candidates AS c
    WHERE c.new_release_id = %(new)s AND c.new_id > %(after)s AND c.new_id <= %(upto)s
      AND NOT c.accepted
    ORDER BY c.new_id, c.by_key DESC, c.separation_arcsec, c.old_id
), mutual AS (
    SELECT b.new_id, b.old_id FROM best_new AS b
    WHERE NOT EXISTS (
        SELECT 1 FROM galdb.lineage_candidates AS c
        WHERE c.new_release_id = %(new)s AND c.old_id = b.old_id AND NOT c.accepted
          AND (NOT c.by_key, c.separation_arcsec, c.new_id)
              < (NOT b.by_key, b.separation_arcsec, b.new_id))
)
UPDATE galdb.lineage_candidates AS c SET accepted = true
FROM mutual AS m
WHERE c.new_release_id = %(new)s AND c.new_id = m.new_id AND c.old_id = m.old_id
RETURNING c.new_id, c.old_id
"""

_DROP_TAKEN = """
DELETE FROM galdb.lineage_candidates
WHERE new_release_id = %(new)s AND NOT accepted AND {side} = ANY(%(ids)s)
"""


def _assign(conn: psycopg.Connection, m: _Match, page_size: int, progress: Progress):
    params = {"new": m.new_release_id}
    first = m.fingerprint["new"][1] - 1
    while True:
        whole_pass, accepted = m.cursor == first, 0
        for after, upto in _pages(conn, m, "new", page_size, progress, "lineage: assign"):
            pairs = conn.execute(_ACCEPT, {**params, "after": after, "upto": upto}).fetchall()
            if pairs:  # the other rows of the galaxies just matched: a page's ids at most
                conn.execute(
                    _DROP_TAKEN.format(side="new_id"), {**params, "ids": [p[0] for p in pairs]}
                )
                conn.execute(
                    _DROP_TAKEN.format(side="old_id"), {**params, "ids": [p[1] for p in pairs]}
                )
            accepted += len(pairs)
        left = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM galdb.lineage_candidates "
            "WHERE new_release_id = %(new)s AND NOT accepted)",
            params,
        ).fetchone()[0]
        if not left:
            break
        if whole_pass and not accepted:  # cannot happen: the best pair left is always taken
            raise RuntimeError("lineage assignment made no progress; please report this")
        _save(conn, m, cursor=first)  # another pass
        conn.commit()
    by_key, by_position = conn.execute(
        "SELECT count(*) FILTER (WHERE by_key), count(*) FILTER (WHERE NOT by_key) "
        "FROM galdb.lineage_candidates WHERE new_release_id = %s AND accepted",
        (m.new_release_id,),
    ).fetchone()
    conn.execute("ANALYZE galdb.lineage_candidates")  # the accepted pairs, for the next phases
    counts = {
        "by_key": by_key,
        "by_position": by_position,
        "new": m.fingerprint["new"][0] - by_key - by_position,
        "not_found": m.fingerprint["old"][0] - by_key - by_position,
    }
    _next_phase(conn, m, counts=counts)


# The accepted pair of each galaxy of the page, looked up on the indexes (LIMIT 1 keeps the
# lateral subquery a per-row lookup, whatever the statistics say about ``accepted``).
_WRITE = """
INSERT INTO galdb.galaxy_lineage
    (galaxy_id, lineage_id, previous_id, matched_by, separation_arcsec)
SELECT g.galaxy_id, COALESCE(c.lineage_id, c.old_id, g.galaxy_id), c.old_id,
       CASE WHEN c.old_id IS NULL THEN 'new' WHEN c.by_key THEN 'key' ELSE 'position' END,
       c.separation_arcsec
FROM galdb.galaxies AS g
LEFT JOIN LATERAL (
    SELECT a.old_id, a.by_key, a.separation_arcsec,
           (SELECT p.lineage_id FROM galdb.galaxy_lineage AS p WHERE p.galaxy_id = a.old_id)
               AS lineage_id
    FROM galdb.lineage_candidates AS a
    WHERE a.new_release_id = %(new)s AND a.new_id = g.galaxy_id AND a.accepted
    LIMIT 1
) AS c ON true
WHERE g.galaxy_id > %(after)s AND g.galaxy_id <= %(upto)s AND g.release_id = %(new)s
ON CONFLICT (galaxy_id) DO UPDATE SET lineage_id = EXCLUDED.lineage_id,
    previous_id = EXCLUDED.previous_id, matched_by = EXCLUDED.matched_by,
    separation_arcsec = EXCLUDED.separation_arcsec
"""


def _write(conn: psycopg.Connection, m: _Match, page_size: int, progress: Progress):
    params = {"new": m.new_release_id}
    _run_pages(conn, m, "new", _WRITE, params, page_size, progress, "lineage: write")
    _next_phase(conn, m)


_ROOTS = """
INSERT INTO galdb.galaxy_lineage (galaxy_id, lineage_id, matched_by)
SELECT galaxy_id, galaxy_id, 'new' FROM galdb.galaxies
WHERE galaxy_id > %(after)s AND galaxy_id <= %(upto)s AND release_id = %(old)s
ON CONFLICT (galaxy_id) DO NOTHING
"""


def _roots(conn: psycopg.Connection, m: _Match, page_size: int, progress: Progress):
    params = {"old": m.old_release_id}
    _run_pages(conn, m, "old", _ROOTS, params, page_size, progress, "lineage: earlier")
    _next_phase(conn, m)


_DESCENDANTS = """
UPDATE galdb.galaxy_lineage AS c SET lineage_id = p.lineage_id
FROM galdb.galaxy_lineage AS p, galdb.galaxies AS g
WHERE c.previous_id = p.galaxy_id AND c.galaxy_id = g.galaxy_id AND g.release_id = %s
  AND c.lineage_id <> p.lineage_id
"""


def _descendants(conn: psycopg.Connection, m: _Match, page_size: int, progress: Progress):
    """Releases matched to this one (and theirs, breadth first) take its lineage ids."""
    seen, frontier = {m.new_release_id}, [m.new_release_id]
    while frontier:
        parent = frontier.pop(0)
        children = conn.execute(
            "SELECT new_release_id FROM galdb.lineage_matches WHERE old_release_id = %s "
            "ORDER BY new_release_id",
            (parent,),
        ).fetchall()
        for (child,) in children:
            if child in seen:
                continue
            seen.add(child)
            conn.execute(_DESCENDANTS, (child,))
            conn.commit()
            frontier.append(child)
    _finish(conn, m)


def _finish(conn: psycopg.Connection, m: _Match) -> None:
    """The match is done: its work rows go, it records its end; commits."""
    conn.execute(
        "DELETE FROM galdb.lineage_candidates WHERE new_release_id = %s", (m.new_release_id,)
    )
    conn.execute(
        "UPDATE galdb.lineage_matches SET finished_at = now() WHERE new_release_id = %s",
        (m.new_release_id,),
    )
    _save(conn, m, status="done")
    _next_phase(conn, m)


_PHASE_RUNNERS = {
    "candidates": _candidates,
    "assign": _assign,
    "write": _write,
    "roots": _roots,
    "descendants": _descendants,
}
