"""Pipelines: what every newly ingested release gets, as a chain of jobs.

A pipeline (one row of ``galdb.pipelines``, at most one active per LVM model) names a model,
the tasks to predict (empty: every task whose current head version uses the model), the
tasks to propagate and the graph's k. After an ingest run of release R, :func:`start`
enqueues, for each active pipeline, the first stage; each stage's job, when its work is
done, enqueues the next (:func:`advance`) on the worker's connection, so the next job is
committed in the same transaction that marks this one done (``queue.finish``):

    embed R with the model → predict (new galaxies get rows in each task's *current*
    version; no version is made) → graph (the model's kNN graph brought up to date) →
    propagate

Invariants: every stage job's payload holds ``pipeline_id``, ``release``, ``release_id``,
``run_id`` (the ingest run) and ``stage``; its dedupe key is
``pipeline:<pipeline_id>:run:<run_id>:<stage>``, so enqueueing a stage twice (a stage
re-run after its worker was killed between its work and its completion) adds nothing.
Every stage is idempotent (it does only what is missing, or replaces its own output), so
a retried attempt ends in the same state as a first one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from galdb.errors import GaldbError
from galdb.jobs import queue
from galdb.labels.tasks import get_task
from galdb.lvm.registry import ModelRecord, lookup

STAGES = ("embed", "predict", "graph", "propagate")
"""The pipeline's job kinds, in order (``ingest`` may come first, see :mod:`.ingest`)."""


@dataclass(frozen=True)
class Pipeline:
    """One row of ``galdb.pipelines``."""

    pipeline_id: int
    model_id: int
    tasks: list[str]
    propagate: list[str]
    k: int
    active: bool
    created_at: datetime


_COLUMNS = "pipeline_id, model_id, tasks, propagate, k, active, created_at"


def set_pipeline(
    conn: psycopg.Connection,
    record: ModelRecord,
    *,
    tasks: list[str] = (),
    propagate: list[str] = (),
    k: int = 15,
) -> Pipeline:
    """Record what every release should get with ``record``'s model, replacing the model's
    active pipeline (kept, inactive). Every named task must exist. Does not commit."""
    for name in [*tasks, *propagate]:
        get_task(conn, name)  # raises GaldbError naming an unknown task
    if not 1 <= k <= 200:
        raise GaldbError(f"k = {k}: use 1 to 200 neighbours")
    conn.execute(
        "UPDATE galdb.pipelines SET active = false WHERE model_id = %s AND active",
        (record.model_id,),
    )
    row = conn.execute(
        f"INSERT INTO galdb.pipelines (model_id, tasks, propagate, k) VALUES (%s, %s, %s, %s) "
        f"RETURNING {_COLUMNS}",
        (record.model_id, list(tasks), list(propagate), k),
    ).fetchone()
    return Pipeline(*row)


def active_pipelines(conn: psycopg.Connection) -> list[Pipeline]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM galdb.pipelines WHERE active ORDER BY pipeline_id"
    ).fetchall()
    return [Pipeline(*r) for r in rows]


def get_pipeline(conn: psycopg.Connection, pipeline_id: int) -> Pipeline:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM galdb.pipelines WHERE pipeline_id = %s", (pipeline_id,)
    ).fetchone()
    if row is None:
        raise GaldbError(f"no pipeline {pipeline_id} (galdb pipeline show)")
    return Pipeline(*row)


def clear_pipeline(conn: psycopg.Connection, model: str | None = None) -> int:
    """Deactivate the active pipeline of ``model`` (a spec or id; None: all); returns how
    many. Does not commit."""
    model_id = lookup(conn, model).model_id if model else None
    return conn.execute(
        "UPDATE galdb.pipelines SET active = false WHERE active "
        "AND (%s::int IS NULL OR model_id = %s)",
        (model_id, model_id),
    ).rowcount


def dedupe_key(payload: dict) -> str:
    return f"pipeline:{payload['pipeline_id']}:run:{payload['run_id']}:{payload['stage']}"


def enqueue_stage(conn: psycopg.Connection, payload: dict) -> int | None:
    """Enqueue one stage's job (``None`` if it was enqueued before). Does not commit."""
    return queue.enqueue(conn, payload["stage"], payload, dedupe_key=dedupe_key(payload))


def start(
    conn: psycopg.Connection, release: str, release_id: int, run_id: int
) -> list[tuple[int, int | None]]:
    """Enqueue the first stage of every active pipeline for an ingest run of ``release``;
    returns (pipeline_id, job id or None when already enqueued). Does not commit."""
    started = []
    for p in active_pipelines(conn):
        payload = {
            "pipeline_id": p.pipeline_id,
            "release": release,
            "release_id": release_id,
            "run_id": run_id,
            "stage": STAGES[0],
        }
        started.append((p.pipeline_id, enqueue_stage(conn, payload)))
    return started


def advance(conn: psycopg.Connection, job: queue.Job) -> int | None:
    """Enqueue the stage after ``job``'s (none after the last); called by a stage's handler
    when its work is done, so the worker commits it with the job's completion."""
    at = STAGES.index(job.payload["stage"])
    if at + 1 == len(STAGES):
        return None
    return enqueue_stage(conn, {**job.payload, "stage": STAGES[at + 1]})
