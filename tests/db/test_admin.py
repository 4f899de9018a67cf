"""The embedded server, migrations and db status against a real PostgreSQL."""

import pytest

from galdb.db import admin, locks, migrate
from galdb.db.connect import connect


def test_init_is_idempotent_and_at_head(settings):
    assert admin.init(settings) == migrate.head_revision()
    assert admin.init(settings) == migrate.head_revision()


def test_status_reports_versions_and_counts(settings):
    st = admin.status(settings)
    assert st.up_to_date
    assert st.versions["pgvector"].startswith("0.8")
    assert int(st.versions["postgresql"].split(".")[0]) >= 16
    assert set(st.counts) >= {"galaxies", "releases", "quarantine"}


def test_schema_objects_exist(settings):
    with connect(settings) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'galdb'"
            )
        }
        assert {
            "surveys",
            "releases",
            "ingest_runs",
            "ingest_files",
            "galaxies",
            "quarantine",
            "catalog",
        } <= tables
        indexes = {
            r[0]
            for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'galaxies'")
        }
        assert "galaxies_zone_ra_idx" in indexes
        assert "galaxies_release_source_key" in indexes


def test_reader_role_cannot_write(settings):
    with connect(settings) as conn:
        row = conn.execute(
            "SELECT has_table_privilege('galdb_reader', 'galdb.galaxies', 'INSERT'), "
            "has_table_privilege('galdb_reader', 'galdb.galaxies', 'SELECT'), "
            "rolsuper FROM pg_roles WHERE rolname = 'galdb_reader'"
        ).fetchone()
    assert row == (False, True, False)


@pytest.mark.embedded
def test_embedded_server_is_tuned_once(settings):
    from galdb.db import server

    assert (settings.pgdata / server.TUNED_MARKER).exists()
    with connect(settings) as conn:
        shared = conn.execute(
            "SELECT setting::bigint * 8 / 1024 FROM pg_settings WHERE name = 'shared_buffers'"
        ).fetchone()[0]
    assert shared == int(server.tuning()["shared_buffers"].removesuffix("MB"))


def test_advisory_lock_namespaces_differ():
    found = locks.namespaces()
    assert len(found) >= 4 and len(set(found.values())) == len(found), found
