"""The ``retrain`` job: a new head version on the task's effective labels, materialized and
switched in atomically (``galdb.heads.materialize``), with the LVM model of the version it
replaces.

A retried attempt reuses the version an earlier attempt trained (recorded in the job's
``progress``), so a worker killed mid-materialization leaves one extra ``trained`` version at
most, never two, and never a half-written current one.
"""

from __future__ import annotations

import psycopg

from galdb.db.settings import Settings
from galdb.heads.materialize import current_predictions, materialize
from galdb.heads.versions import get_version, train_head
from galdb.jobs.queue import Job, save_progress
from galdb.labels.tasks import get_task
from galdb.lvm.registry import lookup


def run(conn: psycopg.Connection, job: Job, settings: Settings) -> dict:
    task = get_task(conn, job.payload["task"])
    version_id = job.progress.get("version_id")
    if version_id is None:
        model_id = job.payload.get("model_id") or current_predictions(conn, task).model_id
        version = train_head(conn, task, lookup(conn, str(model_id)))
        version_id = version.version_id
        save_progress(conn, job.job_id, {"version_id": version_id})
        conn.commit()  # the version and the job's note of it: one transaction
    if get_version(conn, task, version_id).status != "ready":
        materialize(conn, task, version_id)
    version = get_version(conn, task, version_id)
    return {
        "task": task.name,
        "version_id": version_id,
        "n_labels": version.n_labels,
        "n_predictions": version.n_predictions,
        "metrics": version.metrics,
    }
