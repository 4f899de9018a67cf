"""The ``ingest`` job (``galdb ingest --queue``): ingest a release in the worker, then its
follow-ups (:func:`follow_up`: the active pipelines' first stages, and the lineage match of
a Legacy Surveys release), committed with this job's completion.

Idempotent as :func:`galdb.ingest.ingest` is: a retried attempt skips the ids already
stored and resumes where the killed one stopped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg

from galdb.db.settings import Settings
from galdb.errors import IngestFailed
from galdb.ingest import Columns, IngestSummary, LegacySurveyOptions, ingest
from galdb.ingest.runs import release_id_of
from galdb.jobs import queue
from galdb.jobs.lineage import enqueue_lineage
from galdb.jobs.pipelines import start
from galdb.jobs.queue import Job

OPTIONS = ("fmt", "survey", "pixel_scale", "bands", "encoding", "batch_size")
"""Keyword arguments of :func:`galdb.ingest.ingest` a job's payload may carry."""


@dataclass(frozen=True)
class FollowUps:
    """What an ingest run enqueued: (pipeline id, embed job id or None) per active pipeline,
    and the lineage match (the earlier release and its job id; None, None when none)."""

    pipelines: list[tuple[int, int | None]]
    lineage_from: str | None = None
    lineage_job: int | None = None


def follow_up(
    conn: psycopg.Connection, summary: IngestSummary, *, lineage_from: str | None = None
) -> FollowUps:
    """Enqueue what follows an ingest run that stored something: each active pipeline's
    first stage; and, for a ``legacysurvey`` run (or with ``lineage_from``), the lineage
    match to ``lineage_from`` or to the release's earlier release of the same survey, when
    there is one. Does not commit."""
    release_id = release_id_of(conn, summary.release)
    started = start(conn, summary.release, release_id, summary.run_id)
    if summary.format != "legacysurvey" and lineage_from is None:
        return FollowUps(started)
    previous, job_id = enqueue_lineage(conn, summary.release, summary.run_id, previous=lineage_from)
    return FollowUps(started, previous, job_id)


def enqueue_ingest(
    conn: psycopg.Connection,
    path: Path,
    release: str,
    *,
    catalog: Path | None = None,
    columns: Columns | None = None,
    legacysurvey: LegacySurveyOptions | None = None,
    lineage_from: str | None = None,
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
        "legacysurvey": legacysurvey.to_payload() if legacysurvey else None,
        "lineage_from": lineage_from,
        **options,
    }
    return queue.enqueue(conn, "ingest", payload)


def run(conn: psycopg.Connection, job: Job, settings: Settings) -> dict:
    p = job.payload
    legacysurvey = p.get("legacysurvey")
    summary = ingest(
        conn,
        Path(p["path"]),
        p["release"],
        catalog=Path(p["catalog"]) if p.get("catalog") else None,
        columns=Columns(**p.get("columns", {})),
        legacysurvey=LegacySurveyOptions.from_payload(legacysurvey) if legacysurvey else None,
        **{name: p[name] for name in OPTIONS if p.get(name) is not None},
    )
    if not summary.stored_anything:
        raise IngestFailed(f"nothing from {p['path']} could be ingested")
    after = follow_up(conn, summary, lineage_from=p.get("lineage_from"))
    return {
        "run_id": summary.run_id,
        "inserted": summary.inserted,
        "present": summary.present,
        "quarantined": summary.quarantined,
        "pipelines": [pipeline_id for pipeline_id, _ in after.pipelines],
        "lineage": {"to": after.lineage_from, "job_id": after.lineage_job},
    }
