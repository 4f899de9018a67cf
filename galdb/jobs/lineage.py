"""The ``lineage`` job: a Legacy Surveys release matched to an earlier release of the same
survey (:func:`galdb.ingest.lineage.match_releases`), enqueued after each ingest run of it.

The earlier release is named at enqueue time (``--lineage-from``, else
:func:`~galdb.ingest.lineage.earlier_release`) and kept in the payload (``to``), so
``galdb release status`` and the job say which one it was. A retried attempt resumes the
killed one's match (it waits up to :data:`LOCK_WAIT` seconds for the killed worker's server
session to let go of the match's lock); an attempt after a match that saw the same galaxies
reuses its result.
"""

from __future__ import annotations

import psycopg

from galdb.db.settings import Settings
from galdb.ingest.lineage import DEFAULT_RADIUS_ARCSEC, earlier_release, match_releases
from galdb.ingest.runs import release_id_of
from galdb.jobs import queue
from galdb.jobs.queue import Job

LOCK_WAIT = 120.0  # seconds


def enqueue_lineage(
    conn: psycopg.Connection,
    release: str,
    run_id: int,
    *,
    previous: str | None = None,
    radius_arcsec: float = DEFAULT_RADIUS_ARCSEC,
) -> tuple[str | None, int | None]:
    """Enqueue the match of ``release`` (after its ingest run ``run_id``) to ``previous``, or
    to its earlier release; returns (that release or None when there is none, job id or
    None when none was enqueued). Does not commit."""
    previous = previous or earlier_release(conn, release)
    if previous is None:
        return None, None
    release_id_of(conn, previous)  # an unknown release is an error now, not in the worker
    payload = {
        "stage": "lineage",
        "release": release,
        "release_id": release_id_of(conn, release),
        "run_id": run_id,
        "to": previous,
        "radius_arcsec": radius_arcsec,
    }
    job_id = queue.enqueue(conn, "lineage", payload, dedupe_key=f"lineage:run:{run_id}")
    return previous, job_id


def run(conn: psycopg.Connection, job: Job, settings: Settings) -> dict:
    p = job.payload
    summary = match_releases(
        conn, p["release"], p["to"], radius_arcsec=p["radius_arcsec"], lock_wait=LOCK_WAIT
    )
    return summary.as_dict()
