"""Releases and ingest runs: registry rows, the per-release lock, and run bookkeeping.

Invariants:

* At most one ingest per release runs at a time: it holds a session advisory lock keyed on the
  release id for its whole duration. A run still marked ``running`` whose lock is free was
  killed, so the next ingest marks it ``interrupted``.
* Counters of a run are updated in the same transaction as the rows they count, so an
  interrupted run's counters match what it stored.
* A run's ``options`` hold its format and every setting that changes what the input becomes
  (image directory, column names, pixel scale, bands, encoding), plus ``key``, a SHA-256 of
  them. An input is *unchanged* (:func:`completed_rows`) only when an earlier run finished it
  with the same bytes (``ingest_files.sha256``) and the same ``key``, stored at least one
  galaxy, and quarantined nothing for a reason the checksum cannot see (a missing or unreadable
  image file): otherwise the next run reads it again, skipping the ids already stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from galdb.db import locks
from galdb.errors import GaldbError

LOCK_WAIT_S = 5  # how long to wait for the release lock
LOCK_NAMESPACE = locks.INGEST_RELEASE  # (namespace, release_id)


def ensure_release(conn: psycopg.Connection, release: str, survey: str) -> int:
    """Return the id of ``release``, registering it (and ``survey``) on first use."""
    row = conn.execute(
        "SELECT r.release_id, s.name FROM galdb.releases r JOIN galdb.surveys s USING (survey_id) "
        "WHERE r.name = %s",
        (release,),
    ).fetchone()
    if row:
        return row[0]
    conn.execute("INSERT INTO galdb.surveys (name) VALUES (%s) ON CONFLICT DO NOTHING", (survey,))
    release_id = conn.execute(
        "INSERT INTO galdb.releases (survey_id, name) "
        "SELECT survey_id, %s FROM galdb.surveys WHERE name = %s "
        "ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING release_id",
        (release, survey),
    ).fetchone()[0]
    conn.commit()
    return release_id


@contextmanager
def ingest_run(
    conn: psycopg.Connection, release_id: int, source: str, fmt: str, options: dict
) -> Iterator[int]:
    """Open a run under the release lock; close it as completed, failed or interrupted.

    The lock is waited for a few seconds: the session of an ingest killed a moment ago ends
    as soon as the server notices, and a rerun must not be refused meanwhile.
    """
    conn.execute(f"SET LOCAL lock_timeout = '{LOCK_WAIT_S}s'")
    try:
        conn.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, release_id))
    except psycopg.errors.LockNotAvailable as exc:
        raise GaldbError(
            "another ingest of this release is running; wait for it to finish"
        ) from exc
    try:
        conn.execute(
            "UPDATE galdb.ingest_runs SET status = 'interrupted', "
            "message = 'stopped before finishing; a later run resumed it' "
            "WHERE release_id = %s AND status = 'running'",
            (release_id,),
        )
        run_id = conn.execute(
            "INSERT INTO galdb.ingest_runs (release_id, source, format, options) "
            "VALUES (%s, %s, %s, %s) RETURNING run_id",
            (release_id, source, fmt, json.dumps(options, default=str)),
        ).fetchone()[0]
        conn.commit()
        status, message = "failed", None
        try:
            yield run_id
            status = "completed"
        except KeyboardInterrupt:
            status, message = "interrupted", "interrupted by the user"
            raise
        except Exception as exc:
            message = str(exc)[:2000]
            raise
        finally:
            conn.rollback()
            conn.execute(
                "UPDATE galdb.ingest_runs SET status = %s, message = %s, finished_at = now() "
                "WHERE run_id = %s",
                (status, message, run_id),
            )
            conn.commit()
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, release_id))
        conn.commit()


def add_counts(conn: psycopg.Connection, run_id: int, **counts: int) -> None:
    """Add to a run's counters (n_inserted, n_present, n_quarantined, n_files)."""
    sets = ", ".join(f"{name} = {name} + %({name})s" for name in counts)
    conn.execute(
        f"UPDATE galdb.ingest_runs SET {sets} WHERE run_id = %(run_id)s",
        {**counts, "run_id": run_id},
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def settings_key(settings: dict) -> str:
    """SHA-256 of a run's settings (format and options) in a canonical JSON form."""
    text = json.dumps(settings, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def completed_rows(
    conn: psycopg.Connection,
    release_id: int,
    path: str,
    sha: str,
    key: str,
    retry_codes: Iterable[str],
) -> int | None:
    """Rows of an input an earlier run finished with these bytes and settings, else ``None``.

    ``None`` too when that run stored nothing or quarantined a row with one of
    ``retry_codes``: those rows deserve another try, so the input is read again.
    """
    row = conn.execute(
        "SELECT f.rows_done FROM galdb.ingest_files f "
        "JOIN galdb.ingest_runs r ON r.run_id = f.run_id "
        "WHERE f.release_id = %s AND f.path = %s AND f.sha256 = %s AND f.completed "
        "AND r.options->>'key' = %s AND r.n_inserted + r.n_present > 0 "
        "AND NOT EXISTS (SELECT 1 FROM galdb.quarantine q "
        "                WHERE q.run_id = r.run_id AND q.code = ANY(%s))",
        (release_id, path, sha, key, sorted(str(c) for c in retry_codes)),
    ).fetchone()
    return row[0] if row else None


def track_file(
    conn: psycopg.Connection,
    release_id: int,
    run_id: int,
    path: str,
    sha: str,
    size: int,
    *,
    rows_done: int = 0,
    completed: bool = False,
) -> None:
    """Record (or update) an input file's checksum and progress for this release."""
    conn.execute(
        "INSERT INTO galdb.ingest_files "
        "(release_id, path, sha256, size_bytes, rows_done, completed, run_id, updated_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, now()) "
        # EXCLUDED.updated_at, not now(): Citus refuses non-immutable functions in DO UPDATE
        "ON CONFLICT (release_id, path, sha256) DO UPDATE SET rows_done = EXCLUDED.rows_done, "
        "completed = EXCLUDED.completed, run_id = EXCLUDED.run_id, "
        "updated_at = EXCLUDED.updated_at",
        (release_id, path, sha, size, rows_done, completed, run_id),
    )


def release_id_of(conn: psycopg.Connection, release: str) -> int:
    """The id of an existing release; a clear error names the known ones otherwise."""
    row = conn.execute(
        "SELECT release_id FROM galdb.releases WHERE name = %s", (release,)
    ).fetchone()
    if row is None:
        known = [r[0] for r in conn.execute("SELECT name FROM galdb.releases ORDER BY 1")]
        raise GaldbError(f"no release {release!r}; known: {', '.join(known) or 'none yet'}")
    return row[0]
