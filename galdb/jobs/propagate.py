"""The ``propagate`` pipeline stage, the last: each of the pipeline's propagate tasks gets its
labels spread over the model's kNN graph (:func:`galdb.propagate.run.propagate`, which
replaces the task's propagated labels in one transaction: a rerun gives the same labels).
"""

from __future__ import annotations

import psycopg

from galdb.db.connect import database_url
from galdb.db.settings import Settings
from galdb.jobs.pipelines import advance, get_pipeline
from galdb.jobs.queue import Job
from galdb.labels.tasks import get_task
from galdb.lvm.registry import lookup
from galdb.propagate.run import propagate


def run(conn: psycopg.Connection, job: Job, settings: Settings) -> dict:
    pipeline = get_pipeline(conn, job.payload["pipeline_id"])
    record = lookup(conn, str(pipeline.model_id))
    result = {}
    for name in pipeline.propagate:
        summary = propagate(
            conn, database_url(settings), get_task(conn, name), record, k=pipeline.k
        )
        result[name] = {
            "graph_id": summary.graph.graph_id,
            "seeds": summary.seeds,
            "propagated": summary.propagated,
        }
    advance(conn, job)
    return {"tasks": result}
