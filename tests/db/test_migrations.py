"""Migrations upgrade a database that already holds data, and step back down.

Each test gets its own database on the session's embedded server, migrated to an older
revision and filled with rows before it is upgraded, as a user's catalog would be.
"""

import uuid

import numpy as np
import psycopg
import pytest

from galdb.datasets.vectors import clustered_vectors, store_vectors
from galdb.db import migrate, server
from galdb.db.connect import connect, with_database
from galdb.db.readonly import run_readonly
from galdb.db.settings import Settings
from galdb.errors import GaldbError
from galdb.heads.materialize import materialize
from galdb.heads.versions import train_head
from galdb.ingest.runs import release_id_of
from galdb.labels.store import import_labels
from galdb.labels.tasks import create_task, get_task
from galdb.lvm.vectors import iter_embeddings

pytestmark = pytest.mark.embedded  # makes scratch databases as the embedded superuser


@pytest.fixture
def scratch_db(settings):
    """Settings pointing at a new, empty database on the session's server."""
    admin_url = server.ensure_running(settings.pgdata)
    name = f"galdb_migration_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield Settings(home=settings.home, database_url=with_database(admin_url, name))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_upgrade_from_0002_keeps_data_and_downgrade_round_trips(scratch_db):
    assert migrate.upgrade(scratch_db, "0002") == "0002"
    vectors, cluster = clustered_vectors(80, 8, 2, seed=4)
    with connect(scratch_db, check_schema=False) as conn:
        record, ids = store_vectors(conn, vectors, "old-release", "synthetic:old")
    assert migrate.upgrade(scratch_db) == migrate.head_revision()
    with connect(scratch_db) as conn:
        stored = np.concatenate([v for _, v in iter_embeddings(conn, record)])
        np.testing.assert_allclose(stored, vectors, atol=1e-3)
        task = create_task(conn, "shape", "classification", classes=["a", "b"])
        rid = release_id_of(conn, "old-release")
        chunk = [(i, f"v{i:08d}", "ab"[cluster[i]]) for i in range(0, 80, 4)]
        import_labels(conn, task, rid, [chunk], author="old catalog")
        version = train_head(conn, task, record)
        assert materialize(conn, task, version.version_id) == 80
    with connect(scratch_db) as conn:  # a new session picks up the database's search_path
        assert conn.execute("SELECT count(*) FROM shape").fetchone()[0] == 80
    assert migrate.downgrade(scratch_db, "0002") == "0002"
    with connect(scratch_db, check_schema=False) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'galdb' AND (c.relname LIKE 'predictions%%' "
            "OR c.relname IN ('shape', 'tasks', 'labels', 'knn_graphs'))"
        ).fetchone()[0]
        assert left == 0
        assert conn.execute("SELECT count(*) FROM galdb.galaxies").fetchone()[0] == 80
        schemas = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'galdb\\_%%'"
        ).fetchone()[0]
        assert schemas == 0
    assert migrate.upgrade(scratch_db) == migrate.head_revision()


def _predictions_0003(conn, version_id: int, rows: int) -> str:
    """A predictions table exactly as 0003's materialize left it (its SQL, copied)."""
    table = f"predictions_shape_v{version_id}"
    conn.execute(
        f"CREATE TABLE galdb.{table} (galaxy_id int8 NOT NULL, class_index int2 NOT NULL, "
        "p_a float4 NOT NULL, p_b float4 NOT NULL, confidence float4 NOT NULL, "
        "margin float4 NOT NULL, entropy float4 NOT NULL)"
    )
    conn.execute(
        f"INSERT INTO galdb.{table} SELECT galaxy_id, (galaxy_id % 2)::int2, 0.25, 0.75, 0.75, "
        f"0.5, 0.56 FROM galdb.galaxies ORDER BY galaxy_id LIMIT {rows}"
    )
    conn.execute(f"ALTER TABLE galdb.{table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (galaxy_id)")
    conn.execute(
        "UPDATE galdb.head_versions SET status = 'ready', predictions_table = %s, "
        "n_predictions = %s, materialized_at = now() WHERE version_id = %s",
        (table, rows, version_id),
    )
    return table


def test_upgrade_from_0003_moves_predictions_into_their_namespaces(scratch_db):
    """A 0003 catalog with two materialized versions (one current), a task view and a
    build that never finished: after 0004 the view and both versions read as before."""
    assert migrate.upgrade(scratch_db, "0003") == "0003"
    vectors, cluster = clustered_vectors(50, 8, 2, seed=5)
    with connect(scratch_db, check_schema=False) as conn:
        record, ids = store_vectors(conn, vectors, "release-0003", "synthetic:0003")
        task_id = conn.execute(
            "INSERT INTO galdb.tasks (name, kind, classes) VALUES ('shape', 'classification', "
            "'{a,b}') RETURNING task_id"
        ).fetchone()[0]
        versions = [
            conn.execute(
                "INSERT INTO galdb.head_versions (task_id, model_id, algorithm, "
                "hyperparameters, label_sources, n_labels, metrics, parameters) VALUES "
                "(%s, %s, 'logistic', '{}', '{catalog}', 10, '{}', '\\x00') "
                "RETURNING version_id",
                (task_id, record.model_id),
            ).fetchone()[0]
            for _ in range(3)
        ]
        old, current = _predictions_0003(conn, versions[0], 30), None
        current = _predictions_0003(conn, versions[1], 50)
        conn.execute(
            "CREATE VIEW galdb.shape AS SELECT p.galaxy_id, r.name AS release, g.source_id, "
            "g.ra, g.dec, (ARRAY['a', 'b'])[p.class_index + 1] AS label, p.p_a, p.p_b, "
            f"p.confidence, p.margin, p.entropy, {versions[1]}::integer AS head_version, "
            f"g.props FROM galdb.{current} p JOIN galdb.galaxies g USING (galaxy_id) "
            "JOIN galdb.releases r USING (release_id)"
        )
        conn.execute(f"GRANT SELECT ON galdb.{old}, galdb.{current}, galdb.shape TO galdb_reader")
        conn.execute("UPDATE galdb.tasks SET current_version = %s", (versions[1],))
        conn.execute(  # a build killed midway
            f"CREATE TABLE galdb.predictions_shape_v{versions[2]}_build (galaxy_id int8)"
        )
        conn.execute(
            "UPDATE galdb.head_versions SET status = 'materializing' WHERE version_id = %s",
            (versions[2],),
        )
        conn.commit()

    assert migrate.upgrade(scratch_db, "0004") == "0004"
    with connect(scratch_db, check_schema=False) as conn:  # a new session, with the new search_path
        assert conn.execute("SELECT count(*), min(head_version) FROM shape").fetchone() == (
            50,
            versions[1],
        )
        assert conn.execute("SELECT count(*) FROM galdb_tasks.shape").fetchone()[0] == 50
        stored = conn.execute(
            "SELECT version_id, status, predictions_table FROM galdb.head_versions "
            "ORDER BY version_id"
        ).fetchall()
        assert stored == [
            (versions[0], "ready", f"galdb_predictions.v{versions[0]}"),
            (versions[1], "ready", f"galdb_predictions.v{versions[1]}"),
            (versions[2], "failed", None),
        ]
        for v, rows in zip(versions[:2], (30, 50), strict=True):
            assert conn.execute(f"SELECT count(*) FROM galdb_predictions.v{v}").fetchone()[0] == (
                rows
            )
            pkey = conn.execute(
                "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'",
                (f"galdb_predictions.v{v}",),
            ).fetchone()[0]
            assert pkey == f"v{v}_pkey"
        left = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'galdb' AND (c.relname LIKE 'predictions%%' "
            "OR c.relname = 'shape')"
        ).fetchall()
        assert left == []
    reader = run_readonly(scratch_db, f"SELECT count(*) FROM galdb_predictions.v{versions[0]}")
    assert reader.rows == [(30,)]
    assert run_readonly(scratch_db, "SELECT count(*) FROM shape").rows == [(50,)]

    # a version trained and materialized now (by today's code, on today's schema) takes over
    # the same view
    assert migrate.upgrade(scratch_db) == migrate.head_revision()
    with connect(scratch_db) as conn:
        task = get_task(conn, "shape")
        chunk = [(i, f"v{i:08d}", "ab"[cluster[i]]) for i in range(0, 50, 2)]
        import_labels(conn, task, release_id_of(conn, "release-0003"), [chunk], author="c")
        new = train_head(conn, task, record)
        assert materialize(conn, task, new.version_id) == 50
        assert conn.execute("SELECT min(head_version) FROM shape").fetchone()[0] == new.version_id

    # and back: 0003's names again, the view on the current (new) version
    assert migrate.downgrade(scratch_db, "0003") == "0003"
    with connect(scratch_db, check_schema=False) as conn:
        assert conn.execute("SELECT count(*) FROM galdb.shape").fetchone()[0] == 50
        assert (
            conn.execute(f"SELECT count(*) FROM galdb.predictions_shape_v{versions[0]}").fetchone()[
                0
            ]
            == 30
        )
        assert conn.execute("SHOW search_path").fetchone()[0] == '"$user", public, galdb'
    assert migrate.upgrade(scratch_db) == migrate.head_revision()


def test_a_database_behind_this_galdb_is_a_clear_error(scratch_db):
    with pytest.raises(GaldbError, match="no galdb schema yet: run `galdb db init`"):
        connect(scratch_db)
    assert migrate.upgrade(scratch_db, "0005") == "0005"
    with pytest.raises(GaldbError, match="revision 0005 and this galdb needs .*galdb db migrate"):
        connect(scratch_db)
    migrate.upgrade(scratch_db)
    with connect(scratch_db) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
