"""Pipelines: a new release flows through embed → predict → graph → propagate as jobs, on a
real PostgreSQL with a real (tiny, random-init) timm model; idempotent, and a worker killed
at every stage ends in the state of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

from galdb.cli import main
from galdb.db.connect import connect, database_url
from galdb.heads.materialize import materialize
from galdb.heads.versions import train_head
from galdb.ingest import ingest
from galdb.ingest.runs import release_id_of
from galdb.jobs import queue
from galdb.jobs.pipelines import STAGES, active_pipelines, clear_pipeline, set_pipeline, start
from galdb.jobs.status import release_status
from galdb.jobs.worker import run_worker
from galdb.labels.store import catalog_chunks, import_labels
from galdb.labels.tasks import create_task, get_task
from galdb.lvm.embed import embed
from galdb.lvm.registry import lookup
from galdb.lvm.specs import load_model
from galdb.sim import simulate_release
from galdb.sim.morphology import CLASSES

SPEC, K = "timm:test_resnet", 5
quiet = {"log": lambda _: None}


@pytest.fixture(scope="module")
def world(settings, tmp_path_factory):
    """A base release embedded with SPEC; two tasks whose current heads use it (one
    propagated); a pipeline for SPEC; and a simulated new release (not ingested)."""
    base_dir, new_dir = tmp_path_factory.mktemp("base"), tmp_path_factory.mktemp("new")
    base_catalog = simulate_release(base_dir, 40, seed=21, size=32)
    new_catalog = simulate_release(new_dir, 16, seed=22, size=32, ra_center=151.0)
    tag = uuid.uuid4().hex[:6]
    with connect(settings) as conn:
        base = f"pipe-base-{tag}"
        ingest(conn, base_dir, base, catalog=base_catalog)
        rid = release_id_of(conn, base)
        loaded = load_model(SPEC, input_size=32)
        summary = embed(conn, database_url(settings), loaded, release_id=rid, workers=0)
        # by id: other tests register SPEC too, with other input sizes
        record = lookup(conn, str(summary.model_id))
        tasks = []
        for name in (f"morph_{tag}", f"shape_{tag}"):
            task = create_task(conn, name, "classification", classes=list(CLASSES))
            import_labels(
                conn, task, rid, catalog_chunks(conn, rid, "morph_class"), author="catalog"
            )
            materialize(conn, task, train_head(conn, task, record).version_id)
            tasks.append(get_task(conn, name))
        set_pipeline(conn, record, propagate=[tasks[0].name], k=K)
        conn.commit()
    yield {"record": record, "tasks": tasks, "new": (new_dir, new_catalog), "tag": tag}
    with connect(settings) as conn:
        clear_pipeline(conn, str(record.model_id))
        conn.commit()


def state(conn, world, release: str) -> dict:
    """What the pipeline should leave for ``release``, keyed by source id."""
    record, tasks = world["record"], world["tasks"]
    rid = release_id_of(conn, release)
    galaxies = dict(
        conn.execute(
            "SELECT source_id, galaxy_id FROM galdb.galaxies WHERE release_id = %s", (rid,)
        ).fetchall()
    )
    vectors = {
        sid: np.array(v, np.float32)
        for sid, v in conn.execute(
            f"SELECT g.source_id, e.embedding::vector::real[] FROM galdb.{record.partition} e "
            "JOIN galdb.galaxies g USING (galaxy_id) WHERE g.release_id = %s",
            (rid,),
        ).fetchall()
    }
    predictions = {}
    for task in tasks:
        rows = conn.execute(
            f"SELECT source_id, head_version, label, confidence FROM galdb_tasks.{task.name} "
            "WHERE release = %s",
            (release,),
        ).fetchall()
        predictions[task.name] = {r[0]: r[1:] for r in rows}
    in_graph = conn.execute(
        "SELECT count(*) FROM galdb.knn_neighbours n JOIN galdb.knn_graphs k USING (graph_id) "
        "WHERE k.model_id = %s AND k.k = %s AND k.status = 'ready' AND n.galaxy_id = ANY(%s)",
        (record.model_id, K, list(galaxies.values())),
    ).fetchone()[0]
    propagated = conn.execute(
        "SELECT count(*) FROM galdb.labels WHERE task_id = %s AND source = 'propagated' "
        "AND galaxy_id = ANY(%s)",
        (tasks[0].task_id, list(galaxies.values())),
    ).fetchone()[0]
    versions = conn.execute(
        "SELECT task_id, array_agg(version_id ORDER BY version_id), "
        "(SELECT current_version FROM galdb.tasks t WHERE t.task_id = v.task_id) "
        "FROM galdb.head_versions v WHERE task_id = ANY(%s) GROUP BY task_id ORDER BY task_id",
        ([t.task_id for t in tasks],),
    ).fetchall()
    conn.rollback()
    return {
        "galaxies": galaxies,
        "vectors": vectors,
        "predictions": predictions,
        "in_graph": in_graph,
        "propagated": propagated,
        "versions": versions,
    }


def assert_complete(world, s: dict) -> None:
    """Every new galaxy embedded, predicted by each task's (unchanged) current version, in
    the graph, reached by propagation; no second version."""
    n = len(s["galaxies"])
    assert n == 16
    assert set(s["vectors"]) == set(s["galaxies"])
    for task in world["tasks"]:
        got = s["predictions"][task.name]
        assert set(got) == set(s["galaxies"]), task.name
        assert {v[0] for v in got.values()} == {task.current_version}
    assert s["in_graph"] == n
    assert s["propagated"] == n  # no seeds among the new galaxies: every one is propagated
    assert [(v[1], v[2]) for v in s["versions"]] == [
        ([t.current_version], t.current_version) for t in world["tasks"]
    ]


def test_an_ingest_with_a_pipeline_ends_complete_after_the_worker_drains(
    settings, conn, world, unique_release
):
    new_dir, new_catalog = world["new"]
    summary = ingest(conn, new_dir, unique_release, catalog=new_catalog)
    started = start(conn, unique_release, release_id_of(conn, unique_release), summary.run_id)
    conn.commit()
    assert [job for _, job in started if job is None] == []
    before = state(conn, world, unique_release)
    assert before["vectors"] == {} and before["in_graph"] == 0
    assert run_worker(settings, once=True, **quiet) >= len(STAGES)
    stages = release_status(conn, unique_release)
    assert [(s.stage, s.status) for s in stages[1:]] == [(st, "done") for st in STAGES]
    assert stages[0].status == "not started"  # ingested in-process, not as a job
    assert stages[1].result["embedded"] == 16
    assert {t: r["added"] for t, r in stages[2].result["tasks"].items()} == {
        t.name: 16 for t in world["tasks"]
    }
    first = state(conn, world, unique_release)
    assert_complete(world, first)
    counted = conn.execute(
        "SELECT n_predictions, (SELECT count(*) FROM galdb.galaxies g "
        f"JOIN galdb.{world['record'].partition} e USING (galaxy_id)) "
        "FROM galdb.head_versions WHERE version_id = %s",
        (world["tasks"][0].current_version,),
    ).fetchone()
    assert counted[0] == counted[1]  # the version's count follows its table

    # idempotent: the same run's stage again adds no job; a second ingest of the same files
    # (a new run) drains to the same state, same versions
    again = {"pipeline_id": started[0][0], "release": unique_release, "stage": "embed"}
    again |= {"release_id": release_id_of(conn, unique_release), "run_id": summary.run_id}
    assert queue.enqueue(conn, "embed", again, dedupe_key=_key(again)) is None
    conn.rollback()
    rerun = ingest(conn, new_dir, unique_release, catalog=new_catalog)
    assert rerun.inserted == 0
    start(conn, unique_release, release_id_of(conn, unique_release), rerun.run_id)
    conn.commit()
    run_worker(settings, once=True, **quiet)
    second = state(conn, world, unique_release)
    assert second["galaxies"] == first["galaxies"]
    assert second["predictions"] == first["predictions"]
    assert second["versions"] == first["versions"]
    assert (second["in_graph"], second["propagated"]) == (first["in_graph"], first["propagated"])
    for sid, v in first["vectors"].items():
        np.testing.assert_array_equal(second["vectors"][sid], v)
    assert (
        release_status(conn, unique_release)[2].result["tasks"][world["tasks"][0].name]["added"]
        == 0
    )


def _key(payload: dict) -> str:
    from galdb.jobs.pipelines import dedupe_key

    return dedupe_key(payload)


def _lock_for(conn, world, stage: str) -> str:
    """A lock that holds ``stage`` mid-work: it blocks the stage's first write."""
    record, task = world["record"], world["tasks"][0]
    return {
        "ingest": "galdb.galaxies",
        "embed": f"galdb.{record.partition}",
        "predict": f"galdb_predictions.v{task.current_version}",
        "graph": "galdb.knn_neighbours",
        "propagate": "galdb.labels",
    }[stage]


@pytest.mark.slow
def test_a_worker_killed_at_every_stage_ends_as_an_uninterrupted_run(
    settings, conn, world, unique_release
):
    reference = f"{unique_release}-ref"
    new_dir, new_catalog = world["new"]
    # the uninterrupted run: the same files as another release
    summary = ingest(conn, new_dir, reference, catalog=new_catalog)
    start(conn, reference, release_id_of(conn, reference), summary.run_id)
    conn.commit()
    run_worker(settings, once=True, **quiet)
    expected = state(conn, world, reference)
    assert_complete(world, expected)

    # the killed one: `galdb ingest --queue`, then a worker SIGKILLed inside every stage
    assert main(["ingest", str(new_dir), "--catalog", str(new_catalog), "-r", unique_release,
                 "--queue"]) == 0  # fmt: skip
    env = {**os.environ, "GALDB_HOME": str(settings.home)}
    worker_cmd = [sys.executable, "-m", "galdb", "worker", "--heartbeat-every", "0.2",
                  "--poll", "0.2", "--heartbeat-timeout", "1"]  # fmt: skip
    for stage in ("ingest", *STAGES):
        conn.execute(f"LOCK TABLE {_lock_for(conn, world, stage)} IN SHARE MODE")
        worker = subprocess.Popen(
            worker_cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            _wait_blocked_in(settings, unique_release, stage)
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
        finally:
            if worker.poll() is None:
                worker.kill()
            conn.rollback()  # release the lock
        time.sleep(1.3)  # the killed job's heartbeat goes stale
    run_worker(settings, once=True, heartbeat_timeout=1.0, **quiet)

    stages = release_status(conn, unique_release)
    assert [(s.stage, s.status, s.attempts) for s in stages] == [
        (stage, "done", 2) for stage in ("ingest", *STAGES)
    ], [s.error for s in stages]
    got = state(conn, world, unique_release)
    assert_complete(world, got)
    # the same galaxies, vectors and predictions as the uninterrupted run, by source id
    assert set(got["galaxies"]) == set(expected["galaxies"])
    assert got["predictions"] == expected["predictions"]
    for sid, v in expected["vectors"].items():
        np.testing.assert_allclose(got["vectors"][sid], v, atol=1e-2)
    leftovers = conn.execute(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'galdb_predictions' "
        "AND tablename LIKE '%build'"
    ).fetchone()[0]
    assert leftovers == 0


def _wait_blocked_in(settings, release: str, stage: str, timeout: float = 120) -> None:
    """Until the stage's job for ``release`` runs and its worker waits on the test's lock."""
    deadline = time.time() + timeout
    with connect(settings, autocommit=True) as watch:
        while time.time() < deadline:
            running = watch.execute(
                "SELECT count(*) FROM galdb.jobs WHERE kind = %s AND status = 'running' "
                "AND payload->>'release' = %s",
                (stage, release),
            ).fetchone()[0]
            waiting = watch.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()
            if running and waiting[0]:
                return
            time.sleep(0.1)
    pytest.fail(f"the worker never blocked inside the {stage} stage")


def test_pipeline_and_release_status_commands(settings, conn, world, capsys):
    record = world["record"]
    assert main(["pipeline", "show"]) == 0
    assert f"{record.model_id}" in capsys.readouterr().out
    assert main(["pipeline", "set", "-m", SPEC, "--tasks", "no_such_task"]) == 1
    assert "no_such_task" in capsys.readouterr().err
    assert [p.model_id for p in active_pipelines(conn)].count(record.model_id) == 1
    assert main(["release", "status", "no-such-release"]) == 1
    assert "no release 'no-such-release'" in capsys.readouterr().err
    conn.rollback()


def test_galdb_ingest_enqueues_the_pipeline_and_release_status_shows_it(
    settings, conn, world, unique_release, capsys
):
    new_dir, new_catalog = world["new"]
    args = ["ingest", str(new_dir), "--catalog", str(new_catalog), "-r", unique_release]
    assert main(args) == 0
    assert "embed job" in capsys.readouterr().out
    assert main(["release", "status", unique_release]) == 0
    out = capsys.readouterr().out
    assert "queued" in out and "done" not in out
    run_worker(settings, once=True, **quiet)
    assert main(["release", "status", unique_release]) == 0
    out = capsys.readouterr().out
    assert out.count("│ done ") == len(STAGES)  # each stage's status cell
    assert_complete(world, state(conn, world, unique_release))
