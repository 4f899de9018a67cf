"""The job queue: rows of ``galdb.jobs``, claimed with ``FOR UPDATE SKIP LOCKED``.

A job's life: ``queued`` → ``running`` (claimed by a worker, which updates ``heartbeat_at``
while it works) → ``done``; or back to ``queued`` with a backoff after a failure, until
``max_attempts`` failures make it ``failed`` (its last error kept); ``cancelled`` by hand.
A ``running`` job whose heartbeat is older than the claiming worker's timeout belongs to a
worker that died: it is claimed again as a new attempt.

:func:`enqueue` does not commit, so a job goes in with whatever caused it (a reviewer's
decision, an ingest); it notifies ``galdb_jobs``, which PostgreSQL delivers at commit.
The other functions are the worker's and commit themselves: each is one short transaction
whose effect must be visible to other workers at once.

Why a table of our own rather than procrastinate (weighed as the design asks; procrastinate
3.x is a good library and does claim with SKIP LOCKED and wake with LISTEN/NOTIFY):

- a job must go in with the decision that causes it, in the *caller's* transaction on the
  caller's synchronous psycopg connection (the reviewer role's); procrastinate defers through
  its own connector and pool, so the label, its audit row and the job would be two
  transactions (a crash between them loses the retrain or runs it for nothing);
- the schema must live in galdb's frozen alembic history; procrastinate manages its own
  (about 600 lines of SQL and its own migration files), which we would copy and then follow
  release by release;
- a stalled job (worker killed) must be claimed again by the next worker on its own;
  procrastinate reports stalled jobs and leaves retrying them to a periodic task we would
  still have to write, schedule and test.

What we need of a queue is small (one table, five statements here); if jobs grow into
schedules, chains and priorities, that balance changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import psycopg

from galdb.errors import GaldbError

CHANNEL = "galdb_jobs"
HEARTBEAT_TIMEOUT = 60.0  # seconds without a heartbeat after which a running job is reclaimed
BACKOFF_BASE = 5.0  # seconds; attempt k waits BACKOFF_BASE * 4**(k-1)
STATUSES = ("queued", "running", "done", "failed", "cancelled")


@dataclass(frozen=True)
class Job:
    job_id: int
    kind: str
    payload: dict
    status: str
    attempts: int
    max_attempts: int
    progress: dict
    result: dict | None
    error: str | None
    worker: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    run_after: datetime


_COLUMNS = (
    "job_id, kind, payload, status, attempts, max_attempts, progress, result, error, worker, "
    "created_at, started_at, finished_at, heartbeat_at, run_after"
)


def enqueue(
    conn: psycopg.Connection,
    kind: str,
    payload: dict,
    *,
    dedupe_key: str | None = None,
    max_attempts: int = 5,
) -> int | None:
    """Add a job; ``None`` when a job with the same ``dedupe_key`` exists already (whatever
    its status). Does not commit."""
    row = conn.execute(
        "INSERT INTO galdb.jobs (kind, payload, dedupe_key, max_attempts) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (dedupe_key) DO NOTHING RETURNING job_id",
        (kind, json.dumps(payload), dedupe_key, max_attempts),
    ).fetchone()
    if row is None:
        return None
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(row[0])))
    return row[0]


def claim(
    conn: psycopg.Connection,
    worker: str,
    *,
    heartbeat_timeout: float = HEARTBEAT_TIMEOUT,
    kinds: tuple[str, ...] | None = None,
) -> Job | None:
    """Take the oldest ready job (or one whose worker stopped heartbeating); commits."""
    row = conn.execute(
        f"UPDATE galdb.jobs SET status = 'running', attempts = attempts + 1, worker = %(w)s, "
        "started_at = now(), heartbeat_at = now(), finished_at = NULL WHERE job_id = ("
        "SELECT job_id FROM galdb.jobs WHERE ((status = 'queued' AND run_after <= now()) OR "
        "(status = 'running' AND heartbeat_at < now() - make_interval(secs => %(t)s))) "
        "AND (%(kinds)s::text[] IS NULL OR kind = ANY(%(kinds)s)) "
        "ORDER BY run_after, job_id LIMIT 1 FOR UPDATE SKIP LOCKED) "
        f"RETURNING {_COLUMNS}",
        {"w": worker, "t": heartbeat_timeout, "kinds": list(kinds) if kinds else None},
    ).fetchone()
    conn.commit()
    return Job(*row) if row else None


def heartbeat(conn: psycopg.Connection, job_id: int, worker: str) -> bool:
    """Mark the job alive; ``False`` if it is no longer this worker's (cancelled, reclaimed)."""
    alive = conn.execute(
        "UPDATE galdb.jobs SET heartbeat_at = now() WHERE job_id = %s AND worker = %s "
        "AND status = 'running'",
        (job_id, worker),
    ).rowcount
    conn.commit()
    return bool(alive)


def save_progress(conn: psycopg.Connection, job_id: int, progress: dict) -> None:
    """Record what a later attempt of this job can reuse (e.g. the version already trained).
    Does not commit: it goes in with the work it describes."""
    conn.execute(
        "UPDATE galdb.jobs SET progress = progress || %s::jsonb WHERE job_id = %s",
        (json.dumps(progress), job_id),
    )


def finish(conn: psycopg.Connection, job: Job, worker: str, result: dict) -> None:
    """The job is done; commits."""
    conn.execute(
        "UPDATE galdb.jobs SET status = 'done', result = %s, error = NULL, finished_at = now() "
        "WHERE job_id = %s AND worker = %s AND status = 'running'",
        (json.dumps(result), job.job_id, worker),
    )
    conn.commit()


def fail(conn: psycopg.Connection, job: Job, worker: str, error: str) -> str:
    """An attempt failed: queue it again after a backoff, or give up after ``max_attempts``;
    returns the new status. Commits."""
    status = "failed" if job.attempts >= job.max_attempts else "queued"
    conn.execute(
        "UPDATE galdb.jobs SET status = %s, error = %s, finished_at = CASE WHEN %s = 'failed' "
        "THEN now() END, run_after = now() + make_interval(secs => %s) "
        "WHERE job_id = %s AND worker = %s AND status = 'running'",
        (
            status,
            error[:10_000],
            status,
            BACKOFF_BASE * 4 ** (job.attempts - 1),
            job.job_id,
            worker,
        ),
    )
    conn.commit()
    return status


def get_job(conn: psycopg.Connection, job_id: int) -> Job:
    row = conn.execute(f"SELECT {_COLUMNS} FROM galdb.jobs WHERE job_id = %s", (job_id,)).fetchone()
    if row is None:
        raise GaldbError(f"no job {job_id} (galdb jobs list)")
    return Job(*row)


def list_jobs(
    conn: psycopg.Connection,
    *,
    status: str | None = None,
    kind: str | None = None,
    limit: int = 50,
) -> list[Job]:
    if status is not None and status not in STATUSES:
        raise GaldbError(f"status {status!r}: use one of {', '.join(STATUSES)}")
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM galdb.jobs WHERE (%(s)s::text IS NULL OR status = %(s)s) "
        "AND (%(k)s::text IS NULL OR kind = %(k)s) ORDER BY job_id DESC LIMIT %(n)s",
        {"s": status, "k": kind, "n": limit},
    ).fetchall()
    return [Job(*r) for r in rows]


def retry(conn: psycopg.Connection, job_id: int) -> Job:
    """Queue a failed or cancelled job again, now, with a fresh attempt budget. Does not
    commit."""
    job = get_job(conn, job_id)
    if job.status not in ("failed", "cancelled"):
        raise GaldbError(f"job {job_id} is {job.status}: only failed or cancelled jobs are retried")
    conn.execute(
        "UPDATE galdb.jobs SET status = 'queued', attempts = 0, run_after = now(), "
        "finished_at = NULL WHERE job_id = %s",
        (job_id,),
    )
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(job_id)))
    return get_job(conn, job_id)


def cancel(conn: psycopg.Connection, job_id: int) -> Job:
    """Cancel a queued (or running: its worker stops at its next heartbeat) job. Does not
    commit."""
    job = get_job(conn, job_id)
    if job.status not in ("queued", "running"):
        raise GaldbError(f"job {job_id} is {job.status} already")
    conn.execute(
        "UPDATE galdb.jobs SET status = 'cancelled', finished_at = now() WHERE job_id = %s",
        (job_id,),
    )
    return get_job(conn, job_id)
