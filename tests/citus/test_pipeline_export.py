"""On the Citus cluster: a release through its pipeline (embed, predict, graph, propagate as
jobs drained by a worker), and query results exported through the read-only `galdb sql`."""

from __future__ import annotations

import uuid

import numpy as np
from astropy.table import Table

from galdb.cli import main
from galdb.db.connect import database_url
from galdb.heads.materialize import materialize
from galdb.heads.versions import train_head
from galdb.ingest import ingest
from galdb.ingest.runs import release_id_of
from galdb.jobs.pipelines import STAGES, clear_pipeline, set_pipeline, start
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


def test_a_release_flows_through_its_pipeline_on_the_cluster(settings, conn, tmp_path):
    tag = uuid.uuid4().hex[:6]
    base_catalog = simulate_release(tmp_path / "base", 40, seed=31, size=32)
    new_catalog = simulate_release(tmp_path / "new", 16, seed=32, size=32, ra_center=152.0)
    base, new = f"cpipe-base-{tag}", f"cpipe-new-{tag}"
    ingest(conn, tmp_path / "base", base, catalog=base_catalog)
    rid = release_id_of(conn, base)
    summary = embed(
        conn, database_url(settings), load_model(SPEC, input_size=32), release_id=rid, workers=0
    )
    record = lookup(conn, str(summary.model_id))
    task = create_task(conn, f"morph_{tag}", "classification", classes=list(CLASSES))
    import_labels(conn, task, rid, catalog_chunks(conn, rid, "morph_class"), author="catalog")
    materialize(conn, task, train_head(conn, task, record).version_id)
    task = get_task(conn, task.name)
    set_pipeline(conn, record, propagate=[task.name], k=K)
    conn.commit()
    try:
        run = ingest(conn, tmp_path / "new", new, catalog=new_catalog)
        started = start(conn, new, release_id_of(conn, new), run.run_id)
        conn.commit()
        assert all(job is not None for _, job in started)
        assert run_worker(settings, once=True, log=lambda _: None) >= len(STAGES)
    finally:
        clear_pipeline(conn, str(record.model_id))
        conn.commit()
    stages = release_status(conn, new)
    assert [(s.stage, s.status) for s in stages[1:]] == [(st, "done") for st in STAGES]
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT galaxy_id FROM galdb.galaxies WHERE release_id = %s",
            (release_id_of(conn, new),),
        )
    ]
    counts = conn.execute(
        f"SELECT (SELECT count(*) FROM galdb.{record.partition} WHERE galaxy_id = ANY(%(ids)s)),"
        f" (SELECT count(*) FROM galdb_tasks.{task.name} WHERE release = %(rel)s "
        "   AND head_version = %(v)s),"
        " (SELECT count(*) FROM galdb.knn_neighbours n JOIN galdb.knn_graphs k USING (graph_id)"
        "   WHERE k.model_id = %(m)s AND k.status = 'ready' AND n.galaxy_id = ANY(%(ids)s)),"
        " (SELECT count(*) FROM galdb.labels WHERE task_id = %(t)s AND source = 'propagated'"
        "   AND galaxy_id = ANY(%(ids)s))",
        {"ids": ids, "rel": new, "v": task.current_version, "m": record.model_id,
         "t": task.task_id},
    ).fetchone()  # fmt: skip
    assert counts == (16, 16, 16, 16)  # embedded, predicted, in the graph, propagated


def test_sql_exports_a_distributed_query_to_fits_and_votable(settings, conn, tmp_path):
    tag = uuid.uuid4().hex[:6]
    catalog = simulate_release(tmp_path / "sim", 24, seed=33, size=32)
    release = f"cexport-{tag}"
    ingest(conn, tmp_path / "sim", release, catalog=catalog)
    conn.commit()
    want = conn.execute(
        "SELECT g.source_id, g.ra, g.dec FROM galdb.galaxies g JOIN galdb.releases r "
        "USING (release_id) WHERE r.name = %s ORDER BY g.source_id",
        (release,),
    ).fetchall()
    query = (
        "SELECT g.source_id, g.ra, g.dec FROM galdb.galaxies g JOIN galdb.releases r "
        f"USING (release_id) WHERE r.name = '{release}' ORDER BY g.source_id"
    )
    for suffix in ("fits", "vot"):
        out = tmp_path / f"out.{suffix}"
        assert main(["sql", query, "--out", str(out)]) == 0
        table = Table.read(out)
        assert list(table["source_id"]) == [w[0] for w in want]
        np.testing.assert_allclose(table["ra"], [w[1] for w in want])
        assert str(table["ra"].unit) == "deg"
