"""Review loop at scale: next-item latency with concurrent reviewers, and the time from the
correction that crosses the retrain threshold to the new version being current.

1. ``--n`` galaxies (default 1,000,000) with synthetic embeddings, one classification task
   with a head materialized for all of them; ``--reviewers`` processes (default 8) each work
   through the real queue as the app does (margin strategy, a lease per galaxy on screen,
   a decision with its audit row and human label, the lease released with it) for
   ``--seconds``; every next-item call's latency is recorded. Target: p95 <= 50 ms.
2. ``--n-retrain`` galaxies (default 100,000), a task with threshold 20 and a ``galdb worker``
   running; 20 corrections are made and the clock runs from the commit of the 20th to the
   moment the task's view serves the new version. Target: <= 15 s.

    python benchmarks/bench_review.py --n 1000000 --reviewers 8 --seconds 30
"""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _common import Figures, command_line, embedded_server, log, machine, parser  # noqa: E402

from galdb.datasets.vectors import clustered_vectors, store_vectors  # noqa: E402
from galdb.db.connect import connect  # noqa: E402
from galdb.db.settings import Settings  # noqa: E402
from galdb.heads.materialize import materialize  # noqa: E402
from galdb.heads.versions import train_head  # noqa: E402
from galdb.ingest.runs import release_id_of  # noqa: E402
from galdb.labels.store import import_labels  # noqa: E402
from galdb.labels.tasks import create_task, get_task, set_retrain_threshold  # noqa: E402
from galdb.review.session import PREFETCH, ReviewSession  # noqa: E402

CLASSES = ["disk", "bulge", "merger"]


def make_task(conn, n: int, dim: int, threshold: int, seed: int):
    """A task over n new galaxies with a materialized head (300 catalog labels)."""
    release = f"bench-review-{n}-{uuid.uuid4().hex[:4]}"
    vectors, cluster = clustered_vectors(n, dim, 3, spread=0.8, seed=seed)
    t = time.perf_counter()
    record, _ = store_vectors(conn, vectors, release, f"synthetic:{release}")
    log(f"stored {n:,} x {dim} vectors in {time.perf_counter() - t:.1f} s")
    del vectors
    task = create_task(
        conn, f"bench_review_{uuid.uuid4().hex[:6]}", "classification", classes=CLASSES
    )
    set_retrain_threshold(conn, task, threshold)
    picks = np.random.default_rng(seed).choice(n, 300, replace=False)
    chunk = [(i, f"v{p:08d}", CLASSES[cluster[p]]) for i, p in enumerate(picks)]
    import_labels(conn, task, release_id_of(conn, release), [chunk], author="bench")
    t = time.perf_counter()
    version = train_head(conn, task, record)
    conn.commit()
    materialize(conn, task, version.version_id)
    log(f"head trained and {n:,} predictions materialized in {time.perf_counter() - t:.1f} s")
    return get_task(conn, task.name)


def _reviewer(args) -> list[tuple[float, bool]]:
    """One reviewer process; returns every next-item call's latency (seconds) and whether it
    went to the database (the others take an item leased ahead)."""
    home, task_name, who, seconds = args
    os.environ["GALDB_HOME"] = home
    latencies = []
    with connect(Settings.from_env()) as conn:
        session = ReviewSession(conn, get_task(conn, task_name), who)
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            claims = session.prefetched == 0
            t = time.perf_counter()
            item = session.next_item()
            latencies.append((time.perf_counter() - t, claims))
            if item is None:
                break
            session.decide(item, "label", answer=CLASSES[len(latencies) % 3])
        session.close()
    return latencies


def latency(settings, task, reviewers: int, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Milliseconds of every next-item call, and of those that claimed from the database."""
    args = [(str(settings.home), task.name, f"bench{i}", seconds) for i in range(reviewers)]
    with mp.get_context("spawn").Pool(reviewers) as pool:
        runs = pool.map(_reviewer, args)
    calls = [x for run in runs for x in run]
    every = np.array([t for t, _ in calls]) * 1000
    return every, np.array([t for t, claimed in calls if claimed]) * 1000


def retrain_time(settings, conn, task) -> tuple[float, dict]:
    """Seconds from the commit of the correction that crosses the threshold to the view
    serving the new version, with a worker waiting."""
    env = {**os.environ, "GALDB_HOME": str(settings.home)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "galdb", "worker", "--poll", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(5)  # the worker is up and listening
        session = ReviewSession(conn, task, "bench")
        corrections = 0
        while corrections < 20:
            item = session.next_item()
            wrong = next(c for c in CLASSES if c != item.predicted)
            corrections += session.decide(item, "label", answer=wrong).correction
        crossed = time.perf_counter()
        session.close()
        view = f"galdb_tasks.{task.name}"
        while time.perf_counter() - crossed < 600:
            current = conn.execute(f"SELECT head_version FROM {view} LIMIT 1").fetchone()[0]
            conn.commit()
            if current != task.current_version:
                seconds = time.perf_counter() - crossed
                break
            time.sleep(0.05)
        else:
            raise SystemExit("the new version never became current")
        ran = None
        while ran is None:  # the job is marked done just after the switch it made commits
            waited, ran = conn.execute(
                "SELECT started_at - created_at, finished_at - started_at FROM galdb.jobs "
                "WHERE payload->>'task' = %s ORDER BY job_id DESC LIMIT 1",
                (task.name,),
            ).fetchone()
            conn.commit()
            time.sleep(0.05)
        return seconds, {"queued": waited.total_seconds(), "ran": ran.total_seconds()}
    finally:
        worker.terminate()
        worker.wait(30)


def _percentiles(ms: np.ndarray) -> str:
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms"


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--dim", type=int, default=64, help="embedding dimension")
    p.add_argument("--reviewers", type=int, default=8)
    p.add_argument("--seconds", type=float, default=30, help="how long the reviewers work")
    p.add_argument("--n-retrain", type=int, default=100_000)
    args = p.parse_args()
    print(machine())
    with embedded_server(args.home, args.keep) as settings:
        with connect(settings) as conn:
            task = make_task(conn, args.n, args.dim, 10**9, args.seed)
        ms, claims = latency(settings, task, args.reviewers, args.seconds)
        log(f"{len(ms):,} next-item calls by {args.reviewers} reviewers")
        with connect(settings) as conn:
            small = make_task(conn, args.n_retrain, args.dim, 20, args.seed + 1)
            seconds, parts = retrain_time(settings, conn, small)
    print(f"\n$ {command_line()}\n{machine()}")
    print(
        f"next item ({args.n:,} predictions, {args.reviewers} concurrent reviewers, margin "
        f"queue, each deciding between calls; target p95 <= 50 ms):\n"
        f"  every call ({len(ms):,}, {ReviewSession.__name__} leases {PREFETCH} ahead): "
        f"{_percentiles(ms)}\n"
        f"  calls that claimed from the database ({len(claims):,}): {_percentiles(claims)}"
    )
    print(
        f"threshold crossed -> new version current ({args.n_retrain:,} embedded galaxies): "
        f"{seconds:.1f} s (the job waited {parts['queued']:.1f} s for the worker and ran "
        f"{parts['ran']:.1f} s; target <= 15 s)"
    )
    figures = Figures("bench_review.py")
    figures.add(
        f"next item p95, {args.n:,} predictions, {args.reviewers} reviewers",
        float(np.percentile(ms, 95)),
        "ms",
        target=50,
        better="lower",
        note=f"p50 {np.percentile(ms, 50):.1f} ms over {len(ms):,} calls",
    )
    figures.add(
        f"threshold crossed -> new version current, {args.n_retrain:,} galaxies",
        seconds,
        "s",
        target=15,
        better="lower",
        note=f"queued {parts['queued']:.1f} s, ran {parts['ran']:.1f} s",
    )
    figures.write(args.json)


if __name__ == "__main__":
    main()
