"""The ``predict`` pipeline stage: the release's new galaxies get rows in each task's current
head version (:func:`galdb.heads.materialize.predict_missing`); no version is made.

The tasks are the pipeline's, or every task whose current version uses the pipeline's model;
a named task whose current version uses another model (or that has none) is reported as
skipped. Idempotent: only galaxies without a row get one. Then enqueues ``graph``.
"""

from __future__ import annotations

import psycopg

from galdb.db.settings import Settings
from galdb.heads.materialize import predict_missing
from galdb.jobs.pipelines import advance, get_pipeline
from galdb.jobs.queue import Job
from galdb.labels.tasks import get_task


def run(conn: psycopg.Connection, job: Job, settings: Settings) -> dict:
    pipeline = get_pipeline(conn, job.payload["pipeline_id"])
    current = dict(
        conn.execute(
            "SELECT t.name, v.version_id FROM galdb.tasks t JOIN galdb.head_versions v "
            "ON v.version_id = t.current_version WHERE v.model_id = %s ORDER BY t.name",
            (pipeline.model_id,),
        ).fetchall()
    )
    conn.commit()
    names = pipeline.tasks or list(current)
    added, skipped = {}, []
    for name in names:
        if name not in current:
            skipped.append(name)
            continue
        task = get_task(conn, name)
        added[name] = {
            "version_id": current[name],
            "added": predict_missing(conn, task, current[name]),
        }
    advance(conn, job)
    return {"tasks": added, "skipped": skipped}
