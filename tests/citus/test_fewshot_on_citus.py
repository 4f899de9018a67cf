"""On the Citus cluster: `galdb eval fewshot` (head, propagation, head with a simulated
reviewer) over a simulated labelled release."""

from __future__ import annotations

import uuid

from galdb.cli import main
from galdb.db.connect import database_url
from galdb.eval.curves import read_csv
from galdb.ingest import ingest
from galdb.ingest.runs import release_id_of
from galdb.labels.store import catalog_chunks, import_labels
from galdb.labels.tasks import create_task
from galdb.lvm.embed import embed
from galdb.lvm.specs import load_model
from galdb.sim import simulate_release
from galdb.sim.morphology import CLASSES


def test_fewshot_evaluation_on_the_cluster(settings, conn, tmp_path):
    catalog = simulate_release(tmp_path / "sim", 60, seed=41, size=32)
    release = f"cfewshot-{uuid.uuid4().hex[:6]}"
    ingest(conn, tmp_path / "sim", release, catalog=catalog)
    rid = release_id_of(conn, release)
    embed(
        conn,
        database_url(settings),
        load_model("timm:test_resnet", input_size=32),
        release_id=rid,
        workers=0,
    )
    task = create_task(conn, f"cfs_{uuid.uuid4().hex[:8]}", "classification", classes=CLASSES)
    import_labels(conn, task, rid, catalog_chunks(conn, rid, "morph_class"), author="sim")
    conn.commit()
    code = main(
        [
            "eval", "fewshot", "-t", task.name, "-m", "timm:test_resnet", "--labels", "10",
            "--repeats", "1", "--k", "5", "--methods", "head,propagation,head+reviewer",
            "-o", str(tmp_path),
        ]
    )  # fmt: skip
    assert code == 0
    points = read_csv(tmp_path / f"fewshot_{task.name}.csv")
    assert {p.method for p in points} == {"head", "propagation", "head+reviewer"}
    assert all(0 <= p.value <= 1 for p in points)
