"""The ``graph`` pipeline stage: the model's kNN graph (the pipeline's k) brought up to date
with :func:`galdb.propagate.graph.ensure_graph` (reused when it covers every embedding,
extended in place when galaxies were only added, else rebuilt; an interrupted build or
extension resumes). Then enqueues ``propagate``.
"""

from __future__ import annotations

import psycopg

from galdb.db.connect import database_url
from galdb.db.settings import Settings
from galdb.jobs.pipelines import advance, get_pipeline
from galdb.jobs.queue import Job
from galdb.lvm.registry import lookup
from galdb.propagate.graph import ensure_graph


def run(conn: psycopg.Connection, job: Job, settings: Settings) -> dict:
    pipeline = get_pipeline(conn, job.payload["pipeline_id"])
    record = lookup(conn, str(pipeline.model_id))
    graph = ensure_graph(conn, database_url(settings), record, pipeline.k)
    advance(conn, job)
    return {
        "graph_id": graph.graph_id,
        "k": graph.k,
        "n_embeddings": graph.n_embeddings,
        "mode": graph.mode,  # reused, extended or built
    }
