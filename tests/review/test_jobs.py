"""Jobs and the worker: retries, backoff, retrain after corrections, a worker killed mid-job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from galdb.db.connect import connect
from galdb.jobs import queue
from galdb.jobs.worker import run_one, run_worker
from galdb.labels.tasks import get_task
from galdb.review.decisions import decide
from galdb.review.queue import claim

CLASSES = ("disk", "bulge", "merger")


def test_a_failing_job_is_retried_with_backoff_then_fails_keeping_its_error(conn, settings):
    job_id = queue.enqueue(conn, "no_such_kind", {"x": 1}, max_attempts=2)
    conn.commit()
    job = queue.claim(conn, "w1", kinds=("no_such_kind",))
    assert job.job_id == job_id and job.attempts == 1
    assert run_one(settings, job, "w1", log=lambda _: None) == "queued"
    # the backoff keeps it from being claimed at once
    assert queue.claim(conn, "w1", kinds=("no_such_kind",)) is None
    conn.execute("UPDATE galdb.jobs SET run_after = now() WHERE job_id = %s", (job_id,))
    conn.commit()
    job = queue.claim(conn, "w1", kinds=("no_such_kind",))
    assert job.attempts == 2
    assert run_one(settings, job, "w1", log=lambda _: None) == "failed"
    failed = queue.get_job(conn, job_id)
    assert failed.status == "failed" and "no job kind 'no_such_kind'" in failed.error
    queue.retry(conn, job_id)
    conn.commit()
    assert queue.get_job(conn, job_id).status == "queued"
    queue.cancel(conn, job_id)
    conn.commit()
    assert queue.get_job(conn, job_id).status == "cancelled"


def test_dedupe_key_makes_enqueue_idempotent(conn):
    key = f"k-{uuid.uuid4().hex}"
    first = queue.enqueue(conn, "retrain", {"task": "x"}, dedupe_key=key)
    assert first is not None
    assert queue.enqueue(conn, "retrain", {"task": "x"}, dedupe_key=key) is None
    conn.rollback()


def _cross_threshold(conn, task, threshold: int) -> int:
    """Correct ``threshold`` predictions; return the retrain job the last one enqueued."""
    s = uuid.uuid4().hex
    job = None
    for item in claim(conn, task, "alice", s, n=threshold):
        wrong = next(c for c in CLASSES if c != item.predicted)
        job = decide(conn, task, item, "alice", "label", answer=wrong, session=s).retrain_job
    conn.commit()
    assert job is not None
    return job


def test_corrections_retrain_the_head_through_the_worker(conn, settings, make_task):
    r = make_task(threshold=5)
    before = r.task.current_version
    job_id = _cross_threshold(conn, r.task, 5)
    assert run_worker(settings, once=True, log=lambda _: None) >= 1
    job = queue.get_job(conn, job_id)
    assert job.status == "done", job.error
    task = get_task(conn, r.task.name)
    assert task.current_version == job.result["version_id"] != before
    # the new version learned from the catalog labels and the five human corrections
    n_human = conn.execute(
        "SELECT count(*) FROM galdb.head_labels WHERE version_id = %s AND source = 'human'",
        (task.current_version,),
    ).fetchone()[0]
    assert n_human == 5
    assert job.result["n_predictions"] == len(r.ids)


@pytest.mark.slow
def test_a_worker_killed_mid_job_is_replaced_and_no_half_version_is_current(
    conn, settings, make_task
):
    r = make_task(threshold=3)
    before = r.task.current_version
    job_id = _cross_threshold(conn, r.task, 3)
    # hold the switch: the worker trains and builds the new table, then waits on this lock
    conn.execute("LOCK TABLE galdb.tasks IN SHARE MODE")
    env = {**os.environ, "GALDB_HOME": str(settings.home)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "galdb", "worker", "--heartbeat-every", "0.2", "--poll", "0.2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 120
        with connect(settings) as watch:
            while time.time() < deadline:
                row = watch.execute(
                    "SELECT v.status FROM galdb.jobs j JOIN galdb.head_versions v "
                    "ON v.version_id = (j.progress->>'version_id')::int WHERE j.job_id = %s",
                    (job_id,),
                ).fetchone()
                watch.rollback()
                if row and row[0] == "materializing":
                    break
                time.sleep(0.1)
            else:
                pytest.fail("the worker never reached materialization")
            time.sleep(1.0)  # let it reach the switch, where it waits for the lock
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
        conn.rollback()  # release the lock
    job = queue.get_job(conn, job_id)
    assert job.status == "running" and job.attempts == 1
    trained = job.progress["version_id"]
    assert get_task(conn, r.task.name).current_version == before
    schema = "galdb_tasks" if _has_task_schema(conn) else "galdb"
    n_view = conn.execute(
        f"SELECT count(*), min(head_version), max(head_version) FROM {schema}.{r.task.name}"
    ).fetchone()
    assert n_view == (len(r.ids), before, before)
    conn.commit()
    time.sleep(1.2)
    # a new worker claims the job once its heartbeat is stale, reusing the trained version
    assert run_worker(settings, once=True, heartbeat_timeout=1.0, log=lambda _: None) >= 1
    job = queue.get_job(conn, job_id)
    assert job.status == "done" and job.attempts == 2, job.error
    assert job.result["version_id"] == trained
    assert get_task(conn, r.task.name).current_version == trained
    versions = conn.execute(
        "SELECT count(*) FROM galdb.head_versions WHERE task_id = %s", (r.task.task_id,)
    ).fetchone()[0]
    assert versions == 2
    leftovers = conn.execute(
        "SELECT count(*) FROM pg_tables WHERE tablename LIKE %s", (f"%v{trained}\\_build",)
    ).fetchone()[0]
    assert leftovers == 0


def _has_task_schema(conn) -> bool:
    return conn.execute("SELECT to_regnamespace('galdb_tasks') IS NOT NULL").fetchone()[0]
