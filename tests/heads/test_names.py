"""Names of the SQL objects tasks and heads make: namespaces, 63-byte identifiers, cleanup.

User-named objects (task views) live in ``galdb_tasks``, prediction tables in
``galdb_predictions`` under names made of version ids only, and galdb's own objects in
``galdb``; whatever a task is called, it cannot take a name galdb needs later.
"""

import uuid

import numpy as np
import pytest

from galdb.datasets.vectors import clustered_vectors, store_clusters, store_vectors
from galdb.db.connect import connect, database_url
from galdb.db.readonly import run_readonly
from galdb.errors import GaldbError
from galdb.heads.classify import ClassificationHead
from galdb.heads.materialize import materialize, table_names
from galdb.heads.versions import get_version, train_head
from galdb.ingest import ingest
from galdb.ingest.runs import release_id_of
from galdb.labels.store import import_labels
from galdb.labels.tasks import NAME, create_task, derived_identifiers, get_task
from galdb.lvm import registry
from galdb.lvm.embed import embed
from galdb.lvm.specs import load_model
from galdb.sim import simulate_release

N, CLASSES = 120, ("disk", "bulge")
SELECTABLE = ("r", "v", "m", "p", "f", "S")  # relation kinds `SELECT … FROM name` can read


@pytest.fixture(scope="module")
def galaxies(settings):
    """120 galaxies in 2 clusters with a synthetic model's vectors; cluster = true class."""
    with connect(settings) as conn:
        c = store_clusters(conn, "names", N, 16, 2, spread=0.5, seed=5)
    return {"release_id": c.release_id, "record": c.record, "cluster": c.cluster}


def _label(conn, task, galaxies, n=30):
    picks = np.random.default_rng(1).choice(N, n, replace=False)
    chunk = [(i, f"v{p:08d}", task.classes[galaxies["cluster"][p]]) for i, p in enumerate(picks)]
    import_labels(conn, task, galaxies["release_id"], [chunk], author="test")


def _copy_version(conn, version_id: int, task_id: int) -> int:
    """A new head version of another task with the same classes and the same fitted head."""
    return conn.execute(
        "INSERT INTO galdb.head_versions (task_id, model_id, algorithm, hyperparameters, "
        "label_sources, n_labels, label_counts, metrics, parameters) SELECT %s, model_id, "
        "algorithm, hyperparameters, label_sources, n_labels, label_counts, metrics, parameters "
        "FROM galdb.head_versions WHERE version_id = %s RETURNING version_id",
        (task_id, version_id),
    ).fetchone()[0]


def _galdb_relations(conn) -> dict[str, tuple[int, str]]:
    return {
        name: (oid, kind)
        for name, oid, kind in conn.execute(
            "SELECT c.relname, c.oid::int8, c.relkind::text FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'galdb'"
        )
    }


def _build_tables(conn) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE c.relname LIKE '%%\\_build%%'"
        )
    ]


def _drop_task(conn, name: str) -> None:
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT v.predictions_table FROM galdb.head_versions v JOIN galdb.tasks t "
            "USING (task_id) WHERE t.name = %s AND v.predictions_table IS NOT NULL",
            (name,),
        )
    ]
    conn.execute(f'DROP VIEW IF EXISTS galdb_tasks."{name}"')
    for table in tables:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute("DELETE FROM galdb.tasks WHERE name = %s", (name,))
    conn.commit()


def test_a_task_named_like_the_next_models_partition_leaves_it_alone(
    settings, conn, galaxies, tmp_path
):
    """Defect 1: tasks called ``embeddings_m<next model>`` (and its index's name) with
    materialized views; the next model still gets its partition and all its vectors."""
    out = tmp_path / "sim"
    catalog = simulate_release(out, 24, seed=31, size=32)
    release = f"names-sim-{uuid.uuid4().hex[:6]}"
    ingest(conn, out, release, catalog=catalog)
    sim_release = release_id_of(conn, release)
    next_model = conn.execute(
        "SELECT coalesce(pg_sequence_last_value('galdb.models_model_id_seq'), 0) + 1"
    ).fetchone()[0]
    made = []
    try:
        trained = None
        for name in (f"embeddings_m{next_model}", f"embeddings_m{next_model}_hnsw"):
            task = create_task(conn, name, "classification", classes=list(CLASSES))
            made.append(name)
            if trained is None:
                _label(conn, task, galaxies)
                trained = train_head(conn, task, galaxies["record"]).version_id
                version = trained
            else:
                version = _copy_version(conn, trained, task.task_id)
            assert materialize(conn, task, version) == N

        loaded = load_model("timm:test_resnet", input_size=32, crop_fraction=0.8765)
        summary = embed(conn, database_url(settings), loaded, release_id=sim_release, workers=0)
        assert summary.model_id == next_model
        assert summary.embedded == 24 and not summary.failed and summary.index_built
        stored = conn.execute(
            f"SELECT count(*) FROM galdb.embeddings_m{next_model} e "
            "JOIN galdb.galaxies g USING (galaxy_id) WHERE g.release_id = %s",
            (sim_release,),
        ).fetchone()[0]
        assert stored == 24
        again = embed(conn, database_url(settings), loaded, release_id=sim_release, workers=0)
        assert again.embedded == 0
        record = registry.lookup(conn, str(next_model))
        assert registry.ensure_index(conn, record) is False
        for name in made:  # the tasks' views are still there, in their own schema
            assert conn.execute(f"SELECT count(*) FROM galdb_tasks.{name}").fetchone()[0] == N
    finally:
        conn.rollback()
        for name in made:
            _drop_task(conn, name)


def test_tasks_named_like_every_galdb_relation_leave_galdb_alone(conn, galaxies):
    """Defect 1: whatever galdb relation a task is named like, galdb's objects stay as they
    were. A name is refused only where `SELECT … FROM name` would not reach the task's view;
    a task that has such a name anyway (made before galdb took the name) is harmless."""
    task = create_task(conn, f"t_{uuid.uuid4().hex[:10]}", "classification", classes=list(CLASSES))
    made = [task.name]
    before = _galdb_relations(conn)
    try:
        _label(conn, task, galaxies)
        trained = train_head(conn, task, galaxies["record"]).version_id
        for name, (_, kind) in sorted(before.items()):
            if not NAME.match(name):
                continue
            if kind in SELECTABLE:
                with pytest.raises(GaldbError, match=rf"FROM {name} would read galdb\.{name}"):
                    create_task(conn, name, "classification", classes=list(CLASSES))
                conn.execute(
                    "INSERT INTO galdb.tasks (name, kind, classes) "
                    "VALUES (%s, 'classification', %s)",
                    (name, list(CLASSES)),
                )
                conn.commit()
                named = get_task(conn, name)
            else:  # an index or a type: `SELECT … FROM name` cannot read it, so no clash
                named = create_task(conn, name, "classification", classes=list(CLASSES))
            made.append(name)
            assert materialize(conn, named, _copy_version(conn, trained, named.task_id)) == N
        assert len(made) > 20
        assert _galdb_relations(conn) == before
        # galdb still works: a new model gets its partition, its vectors and its index
        vectors, _ = clustered_vectors(30, 8, 2, seed=6)
        release = f"after-{uuid.uuid4().hex[:6]}"
        record, ids = store_vectors(conn, vectors, release, f"synthetic:{release}")
        assert conn.execute(f"SELECT count(*) FROM galdb.{record.partition}").fetchone()[0] == 30
        assert registry.ensure_index(conn, record) is True
    finally:
        conn.rollback()
        for name in made:
            _drop_task(conn, name)


def test_registry_refuses_a_foreign_object_in_a_partitions_place(conn):
    """Defence in depth: an object squatting ``galdb.embeddings_m<id>`` is reported, not
    silently taken for the model's partition."""
    next_model = conn.execute(
        "SELECT coalesce(pg_sequence_last_value('galdb.models_model_id_seq'), 0) + 1"
    ).fetchone()[0]
    squatter = f"embeddings_m{next_model}"
    conn.execute(f"CREATE TABLE galdb.{squatter} (galaxy_id int8)")
    conn.commit()
    try:
        vectors, _ = clustered_vectors(10, 8, 2, seed=2)
        release = f"squat-{uuid.uuid4().hex[:6]}"
        with pytest.raises(GaldbError, match=rf"galdb\.{squatter} .*not .*partition"):
            store_vectors(conn, vectors, release, f"synthetic:{release}")
        conn.rollback()
    finally:
        conn.rollback()
        conn.execute(f"DROP TABLE galdb.{squatter}")
        conn.commit()


def test_longest_names_at_the_largest_version_ids_materialize(settings, conn, galaxies):
    """Defect 6: a 41-character task with 41-character classes, at version ids of 10 digits."""
    name = ("long_" + uuid.uuid4().hex * 2)[:41]
    classes = [(c + "_" + "x" * 40)[:41] for c in CLASSES]
    assert all(len(c) == 41 for c in classes) and len(name) == 41
    for _, identifier in derived_identifiers(name, "classification", classes):
        assert len(identifier.encode()) <= 63
    task = create_task(conn, name, "classification", classes=classes)
    _label(conn, task, galaxies)
    conn.execute(
        "SELECT setval('galdb.head_versions_version_id_seq', "
        "greatest(999999999, (SELECT last_value FROM galdb.head_versions_version_id_seq)))"
    )
    conn.commit()
    try:
        versions = []
        for c in (1.0, 0.1):
            version = train_head(conn, task, galaxies["record"], hyperparameters={"C": c})
            assert version.version_id >= 1_000_000_000
            assert materialize(conn, task, version.version_id, chunk_rows=50) == N
            versions.append(version.version_id)
        columns = ", ".join(f"p_{c}" for c in classes)
        rows = conn.execute(f"SELECT head_version, {columns} FROM galdb_tasks.{name}").fetchall()
        assert len(rows) == N and {r[0] for r in rows} == {versions[-1]}
        for v in versions:
            names = table_names(v)
            assert (
                get_version(conn, task, v).predictions_table == f"galdb_predictions.{names.final}"
            )
            assert (
                conn.execute(f"SELECT count(*) FROM galdb_predictions.{names.final}").fetchone()[0]
                == N
            )
            pkey = conn.execute(
                "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'",
                (f"galdb_predictions.{names.final}",),
            ).fetchone()[0]
            assert pkey == f"{names.final}_pkey"
        assert not _build_tables(conn)
        result = run_readonly(settings, f"SELECT count(*) FROM {name}")
        assert result.rows == [(N,)]
        old = run_readonly(settings, f"SELECT count(*) FROM galdb_predictions.v{versions[0]}")
        assert old.rows == [(N,)]
    finally:
        _drop_task(conn, name)


def test_a_failed_build_leaves_nothing_and_keeps_the_current_version(conn, galaxies, monkeypatch):
    task = create_task(conn, f"t_{uuid.uuid4().hex[:10]}", "classification", classes=list(CLASSES))
    _label(conn, task, galaxies)
    first = train_head(conn, task, galaxies["record"]).version_id
    materialize(conn, task, first)
    second = train_head(conn, task, galaxies["record"], hyperparameters={"C": 0.1}).version_id
    calls = []
    original = ClassificationHead.prediction_columns

    def fail_on_second_chunk(self, vectors):
        calls.append(len(vectors))
        if len(calls) == 2:
            raise RuntimeError("disk full (simulated)")
        return original(self, vectors)

    monkeypatch.setattr(ClassificationHead, "prediction_columns", fail_on_second_chunk)
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            materialize(conn, task, second, chunk_rows=40)
        assert len(calls) == 2
        assert not _build_tables(conn)
        failed = get_version(conn, task, second)
        assert failed.status == "failed" and failed.predictions_table is None
        assert "disk full" in failed.metrics["materialize_error"]
        assert get_task(conn, task.name).current_version == first
        assert get_version(conn, task, first).status == "ready"
        view = conn.execute(
            f"SELECT count(*), min(head_version), max(head_version) FROM galdb_tasks.{task.name}"
        ).fetchone()
        assert view == (N, first, first)
        # a failed re-prediction of the current version leaves it current and ready
        calls.clear()
        with pytest.raises(RuntimeError, match="disk full"):
            materialize(conn, task, first, chunk_rows=40)
        assert get_version(conn, task, first).status == "ready"
        assert not _build_tables(conn)
        monkeypatch.undo()
        assert materialize(conn, task, second, chunk_rows=40) == N
        ready = get_version(conn, task, second)
        assert ready.status == "ready" and "materialize_error" not in ready.metrics
    finally:
        monkeypatch.undo()
        _drop_task(conn, task.name)


def test_task_name_message_names_the_view(conn):
    """Defect 9 (part): the message printed the literal text ``galdb.{name}``."""
    with pytest.raises(GaldbError) as err:
        create_task(conn, "Bad-Name", "classification", classes=list(CLASSES))
    message = str(err.value)
    assert "{name}" not in message and "'Bad-Name'" in message and "galdb_tasks." in message
