"""The ``embed`` pipeline stage: vectors for the release's galaxies lacking one.

Idempotent and resumable as :func:`galdb.lvm.embed.embed` is: a retried attempt embeds
exactly the galaxies still missing. Then enqueues ``predict`` (:func:`.pipelines.advance`).

A retried attempt first waits (up to :data:`LOCK_WAIT` seconds) for the model's embed lock:
the server session of a killed worker keeps it until the server notices the client is gone,
which would otherwise fail the retry at once and cost it a backoff.
"""

from __future__ import annotations

import time

import psycopg

from galdb.db.connect import database_url
from galdb.db.settings import Settings
from galdb.jobs.pipelines import advance, get_pipeline
from galdb.jobs.queue import Job
from galdb.lvm.embed import LOCK_NAMESPACE, embed
from galdb.lvm.registry import load_registered, lookup

READERS = 2  # DataLoader reader processes
LOCK_WAIT = 120.0  # seconds


def wait_for_embed_lock(conn: psycopg.Connection, model_id: int, timeout: float = LOCK_WAIT):
    """Return once no session holds the model's embed lock (or after ``timeout``: then
    :func:`galdb.lvm.embed.embed` reports the other embed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        free = conn.execute(
            "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_NAMESPACE, model_id)
        ).fetchone()[0]
        if free:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, model_id))
            conn.commit()
            return
        conn.rollback()
        time.sleep(0.5)


def run(conn: psycopg.Connection, job: Job, settings: Settings) -> dict:
    pipeline = get_pipeline(conn, job.payload["pipeline_id"])
    record = lookup(conn, str(pipeline.model_id))
    if job.attempts > 1:
        wait_for_embed_lock(conn, record.model_id)
    summary = embed(
        conn,
        database_url(settings),
        load_registered(conn, record),
        release_id=job.payload["release_id"],
        workers=job.payload.get("readers", READERS),
    )
    advance(conn, job)
    return {
        "model_id": record.model_id,
        "embedded": summary.embedded,
        "unreadable": len(summary.failed),
        "seconds": round(summary.seconds, 3),
    }
