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
from galdb.db.settings import Settings
from galdb.heads.materialize import materialize
from galdb.heads.versions import train_head
from galdb.ingest.runs import release_id_of
from galdb.labels.store import import_labels
from galdb.labels.tasks import create_task
from galdb.lvm.vectors import iter_embeddings


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
    with connect(scratch_db) as conn:
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
    with connect(scratch_db) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'galdb' AND (c.relname LIKE 'predictions%%' "
            "OR c.relname IN ('shape', 'tasks', 'labels', 'knn_graphs'))"
        ).fetchone()[0]
        assert left == 0
        assert conn.execute("SELECT count(*) FROM galdb.galaxies").fetchone()[0] == 80
    assert migrate.upgrade(scratch_db) == migrate.head_revision()
