"""``galdb worker``: wait for jobs, run them, keep them alive with heartbeats.

The worker LISTENs on ``galdb_jobs`` (enqueue notifies it at commit) and also polls, so a job
whose backoff ends, or whose worker died, is picked up without a notification. While a job
runs, a thread with its own connection updates the job's heartbeat; if the job was cancelled
(or reclaimed after a stall), the heartbeat thread sees it and the job's result is not
recorded. A handler's exception becomes the job's error and a retry with backoff.

A handler may enqueue follow-up jobs on the connection it is given without committing them
(pipeline stages do): :func:`galdb.jobs.queue.finish` commits them with the job's completion.
"""

from __future__ import annotations

import os
import socket
import threading
import traceback
from collections.abc import Callable

from galdb.db.connect import connect
from galdb.db.settings import Settings
from galdb.jobs import queue
from galdb.jobs.kinds import KINDS


class _Heartbeat(threading.Thread):
    def __init__(self, settings: Settings, job_id: int, worker: str, every: float):
        super().__init__(daemon=True, name=f"heartbeat-{job_id}")
        self.settings, self.job_id, self.worker, self.every = settings, job_id, worker, every
        self.stop = threading.Event()
        self.lost = False

    def run(self) -> None:
        with connect(self.settings) as conn:
            while not self.stop.wait(self.every):
                if not queue.heartbeat(conn, self.job_id, self.worker):
                    self.lost = True
                    return


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_one(
    settings: Settings,
    job: queue.Job,
    worker: str,
    *,
    heartbeat_every: float = 5.0,
    log: Callable[[str], None] = print,
) -> str:
    """Run a claimed job to its end; returns its new status."""
    beat = _Heartbeat(settings, job.job_id, worker, heartbeat_every)
    beat.start()
    try:
        with connect(settings) as conn:
            try:
                handler = KINDS.get(job.kind)
                if handler is None:
                    raise RuntimeError(f"no job kind {job.kind!r} (known: {', '.join(KINDS)})")
                result = handler(conn, job, settings)
            except Exception as exc:  # the job's failure, not the worker's
                conn.rollback()
                text = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
                status = queue.fail(conn, job, worker, text)
                log(f"job {job.job_id} ({job.kind}) attempt {job.attempts} failed: {exc}; {status}")
                return status
            if beat.lost:
                log(f"job {job.job_id} was cancelled or reclaimed while running; result dropped")
                return "lost"
            queue.finish(conn, job, worker, result)
            log(f"job {job.job_id} ({job.kind}) done: {result}")
            return "done"
    finally:
        beat.stop.set()
        beat.join()


def run_worker(
    settings: Settings,
    *,
    once: bool = False,
    poll: float = 5.0,
    heartbeat_every: float = 5.0,
    heartbeat_timeout: float = queue.HEARTBEAT_TIMEOUT,
    max_jobs: int | None = None,
    log: Callable[[str], None] = print,
) -> int:
    """Process jobs until interrupted (or, with ``once``, until none is ready); returns the
    number of jobs run."""
    worker = worker_name()
    done = 0
    with connect(settings, autocommit=True) as listener, connect(settings) as conn:
        listener.execute(f"LISTEN {queue.CHANNEL}")
        log(f"worker {worker} waiting for jobs")
        while max_jobs is None or done < max_jobs:
            job = queue.claim(conn, worker, heartbeat_timeout=heartbeat_timeout)
            if job is None:
                if once:
                    break
                for _ in listener.notifies(timeout=poll, stop_after=1):
                    pass
                continue
            log(f"job {job.job_id} ({job.kind}) attempt {job.attempts}: {job.payload}")
            run_one(settings, job, worker, heartbeat_every=heartbeat_every, log=log)
            done += 1
    return done
