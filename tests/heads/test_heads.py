"""Tasks, labels, head versions and materialized predictions against the real PostgreSQL."""

import csv
import threading
import time
import uuid

import numpy as np
import pytest

from galdb.datasets.vectors import store_clusters
from galdb.db.connect import connect
from galdb.db.readonly import run_readonly
from galdb.errors import GaldbError
from galdb.heads.materialize import materialize, table_names
from galdb.heads.versions import get_version, list_versions, train_head
from galdb.labels.store import (
    catalog_chunks,
    effective_labels,
    file_chunks,
    import_labels,
    shown_labels,
)
from galdb.labels.tasks import create_task, get_task

N, CLASSES = 600, ("disk", "bulge", "merger")


def task_name() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def galaxies(settings):
    """600 galaxies in 3 clusters with a synthetic model's vectors; cluster = true class."""
    with connect(settings) as conn:
        c = store_clusters(conn, "heads", N, 32, 3, spread=0.6, seed=3)
    return {
        "release_id": c.release_id,
        "record": c.record,
        "ids": c.ids,
        "vectors": c.vectors,
        "cluster": c.cluster,
    }


def labelled_task(conn, galaxies, n_labels=60, tmp_path=None):
    task = create_task(conn, task_name(), "classification", classes=list(CLASSES))
    picks = np.random.default_rng(0).choice(N, n_labels, replace=False)
    chunk = [(i, f"v{p:08d}", CLASSES[galaxies["cluster"][p]]) for i, p in enumerate(picks)]
    import_labels(conn, task, galaxies["release_id"], [chunk], author="test catalog")
    return task


def test_task_names_are_checked(conn):
    with pytest.raises(GaldbError, match="lowercase"):
        create_task(conn, "Morph-ology", "classification", classes=["a", "b"])
    with pytest.raises(GaldbError, match=r"FROM galaxies would read galdb\.galaxies"):
        create_task(conn, "galaxies", "classification", classes=["a", "b"])
    with pytest.raises(GaldbError, match="at least 2"):
        create_task(conn, task_name(), "classification", classes=["a"])
    with pytest.raises(GaldbError, match="p_<class>"):
        create_task(conn, task_name(), "classification", classes=["Spiral", "E"])
    task = create_task(conn, task_name(), "regression", unit="arcsec")
    assert get_task(conn, task.name).unit == "arcsec"


def test_label_import_reports_bad_rows_and_keeps_good(conn, galaxies, tmp_path):
    task = create_task(conn, task_name(), "classification", classes=list(CLASSES))
    path = tmp_path / "labels.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "morph"])
        w.writerows(
            [
                ["v00000000", "disk"],
                ["v00000001", "Disk"],  # mapped below
                ["v00000002", "spiral"],  # not a class
                ["nosuch", "disk"],  # no galaxy
                ["v00000003", ""],  # empty
                ["v00000004", "bulge"],
                ["v00000004", "merger"],  # repeated id: last kept
            ]
        )
    summary = import_labels(
        conn,
        task,
        galaxies["release_id"],
        file_chunks(path, "id", "morph"),
        author="labels.csv",
        mapping={"Disk": "disk"},
    )
    assert (summary.read, summary.stored, summary.unknown, summary.invalid) == (7, 3, 1, 3)
    reasons = {(p.row, p.source_id): p.reason for p in summary.problems}
    assert "not a class" in reasons[(3, "v00000002")]
    assert "no galaxy" in reasons[("4", "nosuch")]
    assert "empty" in reasons[(5, "v00000003")]
    labels = effective_labels(conn, task)
    assert [CLASSES[t] for t in labels.targets] == ["disk", "disk", "merger"]
    again = import_labels(
        conn, task, galaxies["release_id"], file_chunks(path, "id", "morph"), author="labels.csv"
    )
    assert again.stored == 2  # replaced, not duplicated
    assert (
        conn.execute(
            "SELECT count(*) FROM galdb.labels WHERE task_id = %s", (task.task_id,)
        ).fetchone()[0]
        == 3
    )


def test_precedence_human_over_propagated_over_catalog(conn, galaxies):
    task = create_task(conn, task_name(), "classification", classes=list(CLASSES))
    rid = galaxies["release_id"]
    import_labels(conn, task, rid, [[(1, "v00000010", "disk")]], author="cat")
    import_labels(conn, task, rid, [[(1, "v00000010", "bulge")]], source="human", author="ann")
    import_labels(
        conn, task, rid, [[(1, "v00000010", "merger")]], source="propagated", author="graph"
    )
    import_labels(
        conn, task, rid, [[(1, "v00000011", "merger")]], source="propagated", author="graph"
    )
    import_labels(conn, task, rid, [[(1, "v00000011", "disk")]], author="cat")
    rows = conn.execute(
        "SELECT g.source_id, e.class, e.source FROM galdb.effective_labels e "
        "JOIN galdb.galaxies g USING (galaxy_id) WHERE e.task = %s ORDER BY 1",
        (task.name,),
    ).fetchall()
    assert rows == [("v00000010", "bulge", "human"), ("v00000011", "merger", "propagated")]
    ids = dict(
        conn.execute(
            "SELECT source_id, galaxy_id FROM galdb.galaxies WHERE release_id = %s "
            "AND source_id IN ('v00000010', 'v00000011', 'v00000012')",
            (rid,),
        ).fetchall()
    )
    shown = shown_labels(conn, task, list(ids.values()))  # what a reviewer sees beside them
    assert shown == {ids["v00000010"]: "bulge", ids["v00000011"]: "merger"}
    only_catalog = effective_labels(conn, task, ("catalog",))
    assert [CLASSES[t] for t in only_catalog.targets] == ["disk", "disk"]
    trusting = create_task(
        conn, task_name(), "classification", classes=list(CLASSES),
        precedence=["catalog", "human", "propagated"],
    )  # fmt: skip
    import_labels(conn, trusting, rid, [[(1, "v00000010", "disk")]], author="cat")
    import_labels(conn, trusting, rid, [[(1, "v00000010", "bulge")]], source="human", author="a")
    assert CLASSES[effective_labels(conn, trusting).targets[0]] == "disk"
    with pytest.raises(GaldbError, match="each of"):
        create_task(conn, task_name(), "regression", precedence=["human", "catalog"])


def test_labels_from_an_ingested_catalog_column(conn, galaxies):
    task = create_task(conn, task_name(), "classification", classes=list(CLASSES))
    rid = galaxies["release_id"]
    conn.execute(
        "UPDATE galdb.galaxies SET props = jsonb_build_object('zoo', "
        "CASE WHEN source_id < 'v00000005' THEN 'disk' ELSE 'bulge' END) "
        "WHERE release_id = %s AND source_id < 'v00000008'",
        (rid,),
    )
    conn.commit()
    summary = import_labels(
        conn, task, rid, catalog_chunks(conn, rid, "zoo", chunk_rows=3), author="catalog:zoo"
    )
    assert (summary.read, summary.stored) == (8, 8)
    assert np.bincount(effective_labels(conn, task).targets).tolist() == [5, 3]


def test_train_predict_every_embedded_galaxy_once(settings, conn, galaxies):
    task = labelled_task(conn, galaxies)
    version = train_head(conn, task, galaxies["record"])
    assert version.n_labels == 60 and version.status == "trained"
    assert version.metrics["cv_auc"] > 0.95 and version.metrics["n_folds"] == 5
    snapshot = conn.execute(
        "SELECT count(*), count(DISTINCT class) FROM galdb.head_labels WHERE version_id = %s",
        (version.version_id,),
    ).fetchone()
    assert snapshot == (60, 3)
    assert materialize(conn, task, version.version_id, chunk_rows=128) == N
    rows = conn.execute(
        f"SELECT count(*), count(DISTINCT galaxy_id), max(abs(p_disk + p_bulge + p_merger - 1)), "
        f"min(head_version), max(head_version) FROM galdb_tasks.{task.name}"
    ).fetchone()
    assert rows[:2] == (N, N) and rows[2] < 1e-5 and rows[3] == rows[4] == version.version_id
    labels = dict(conn.execute(f"SELECT source_id, label FROM galdb_tasks.{task.name}").fetchall())
    truth = {f"v{i:08d}": CLASSES[c] for i, c in enumerate(galaxies["cluster"])}
    accuracy = np.mean([labels[k] == v for k, v in truth.items()])
    assert accuracy > 0.95
    # what an astronomer types, through the read-only interface and its search_path
    result = run_readonly(
        settings, f"SELECT label, count(*) FROM {task.name} WHERE confidence > 0 GROUP BY 1"
    )
    assert sum(r[1] for r in result.rows) == N
    assert get_task(conn, task.name).current_version == version.version_id
    assert get_version(conn, task).status == "ready"


def test_version_switch_is_atomic_under_a_concurrent_reader(settings, conn, galaxies):
    task = labelled_task(conn, galaxies)
    first = train_head(conn, task, galaxies["record"])
    materialize(conn, task, first.version_id)
    second = train_head(conn, task, galaxies["record"], hyperparameters={"C": 0.1})
    seen: list[tuple] = []
    done = threading.Event()

    def read():
        with connect(settings, autocommit=True) as reader:
            while not done.is_set():
                seen.append(
                    reader.execute(
                        f"SELECT count(*), min(head_version), max(head_version), "
                        f"count(DISTINCT galaxy_id) FROM galdb_tasks.{task.name}"
                    ).fetchone()
                )

    def reads_after(count: int) -> None:  # the reader has read more than count times
        deadline = time.monotonic() + 30
        while len(seen) <= count and time.monotonic() < deadline:
            time.sleep(0.005)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        reads_after(0)  # the old version seen before the switch
        materialize(conn, task, second.version_id, chunk_rows=50)  # 12 commits while read
        materialize(conn, task, second.version_id, chunk_rows=50)  # re-predict in place
        reads_after(len(seen) + 1)  # and the new one after it
    finally:
        done.set()
        thread.join()
    assert all(row[0] == N and row[3] == N and row[1] == row[2] for row in seen), set(seen)
    assert {row[1] for row in seen} == {first.version_id, second.version_id}
    assert seen[0][1] == first.version_id and seen[-1][1] == second.version_id
    # the earlier version stays queryable in its own table
    old = conn.execute(f"SELECT count(*) FROM {table_names(first.version_id).qualified}")
    assert old.fetchone()[0] == N
    assert [v.status for v in list_versions(conn, task)] == ["ready", "ready"]


def test_regression_head_reports_r2_and_honest_uncertainty(conn, galaxies):
    task = create_task(conn, task_name(), "regression", unit="arcsec")
    vectors = galaxies["vectors"]
    truth = 2.0 + vectors[:, 0] * 3 - vectors[:, 1] + np.random.default_rng(1).normal(0, 0.05, N)
    picks = np.random.default_rng(2).choice(N, 200, replace=False)
    chunk = [(i, f"v{p:08d}", truth[p]) for i, p in enumerate(picks)]
    import_labels(conn, task, galaxies["release_id"], [chunk], author="sim truth")
    version = train_head(conn, task, galaxies["record"])
    assert version.metrics["cv_r2"] > 0.8
    assert 0.5 < version.metrics["cv_within_1sigma"] < 0.95
    assert materialize(conn, task, version.version_id) == N
    value, sigma = np.array(
        conn.execute(
            f"SELECT value, uncertainty FROM galdb_tasks.{task.name} ORDER BY galaxy_id"
        ).fetchall()
    ).T
    assert np.corrcoef(value, truth)[0, 1] > 0.9 and (sigma > 0).all()


def test_training_without_enough_labels_says_what_to_do(conn, galaxies):
    task = create_task(conn, task_name(), "classification", classes=list(CLASSES))
    with pytest.raises(GaldbError, match="galdb label import"):
        train_head(conn, task, galaxies["record"])
    rid = galaxies["release_id"]
    import_labels(
        conn, task, rid, [[(1, "v00000001", "disk"), (2, "v00000002", "disk")]], author="c"
    )
    with pytest.raises(GaldbError, match="at least two classes"):
        train_head(conn, task, galaxies["record"])
