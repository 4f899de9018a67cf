"""The ``ingest`` job (``galdb ingest --queue``): ingest a release in the worker, then start
the active pipelines for it (:func:`galdb.jobs.pipelines.start`, committed with this job's
completion).

Idempotent as :func:`galdb.ingest.ingest` is: a retried attempt skips the ids already
stored and resumes where the killed one stopped.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import psycopg

from galdb.db.settings import Settings
from galdb.errors import IngestFailed
from galdb.ingest import Columns, ingest
from galdb.ingest.runs import release_id_of
from galdb.jobs import queue
from galdb.jobs.pipelines import start
from galdb.jobs.queue import Job

OPTIONS = ("fmt", "survey", "pixel_scale", "bands", "encoding", "batch_size")
"""Keyword arguments of :func:`galdb.ingest.ingest` a job's payload may carry."""


def enqueue_ingest(
    conn: psycopg.Connection,
    path: Path,
    release: str,
    *,
    catalog: Path | None = None,
    columns: Columns | None = None,
    **options,
) -> int:
    """Enqueue an ingest of ``path`` into ``release`` (paths made absolute: the worker may
    run elsewhere). Does not commit."""
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise TypeError(f"unknown ingest options {sorted(unknown)}")
    payload = {
        "stage": "ingest",
        "release": release,
        "path": str(Path(path).resolve()),
        "catalog": str(Path(catalog).resolve()) if catalog else None,
        "columns": asdict(columns or Columns()),
        **options,
    }
    return queue.enqueue(conn, "ingest", payload)


def run(conn: psycopg.Connection, job: Job, settings: Settings) -> dict:
    p = job.payload
    summary = ingest(
        conn,
        Path(p["path"]),
        p["release"],
        catalog=Path(p["catalog"]) if p.get("catalog") else None,
        columns=Columns(**p.get("columns", {})),
        **{name: p[name] for name in OPTIONS if p.get(name) is not None},
    )
    if not summary.stored_anything:
        raise IngestFailed(f"nothing from {p['path']} could be ingested")
    started = start(conn, p["release"], release_id_of(conn, p["release"]), summary.run_id)
    return {
        "run_id": summary.run_id,
        "inserted": summary.inserted,
        "present": summary.present,
        "quarantined": summary.quarantined,
        "pipelines": [pipeline_id for pipeline_id, _ in started],
    }
