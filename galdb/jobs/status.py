"""A release's pipeline stages as its jobs tell them (``galdb release status``).

Each stage shows its newest job for the release (``jobs.payload->>'release'``): after a
second ingest of the same release, the second run's jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from galdb.ingest.runs import release_id_of
from galdb.jobs.pipelines import STAGES


@dataclass(frozen=True)
class StageStatus:
    """The newest job of one stage for a release (``job_id`` None: never enqueued)."""

    stage: str
    job_id: int | None = None
    status: str = "not started"
    attempts: int = 0
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: dict | None = None
    error: str | None = None

    @property
    def seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


def release_status_sql() -> str:
    """The query behind :func:`release_status` (parameter: the release name)."""
    return (
        "SELECT DISTINCT ON (kind) kind, job_id, status, attempts, created_at, started_at, "
        "finished_at, result, error FROM galdb.jobs WHERE payload ? 'release' "
        "AND payload->>'release' = %s AND kind = ANY(%s) ORDER BY kind, job_id DESC"
    )


def release_status(conn: psycopg.Connection, release: str) -> list[StageStatus]:
    """Each stage (ingest, lineage when the release has a lineage job, then the pipeline's)
    of ``release``, in order; raises GaldbError for an unknown release with no queued
    ingest."""
    stages = ("ingest", "lineage", *STAGES)
    rows = {
        r[0]: StageStatus(*r)
        for r in conn.execute(release_status_sql(), (release, list(stages))).fetchall()
    }
    if not rows:
        release_id_of(conn, release)  # raises, naming the known releases, if unknown
    shown = [s for s in stages if s != "lineage" or s in rows]
    return [rows.get(stage, StageStatus(stage)) for stage in shown]
