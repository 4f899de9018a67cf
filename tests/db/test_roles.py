"""The owner role (migration 0009): galdb's objects belong to ``galdb_owner``, and any login
role that is a member of it can do the owner's work, including replacing what another
member made at run time."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg
import pytest

from galdb.datasets.vectors import store_vectors
from galdb.db import admin, migrate
from galdb.db.connect import connect, database_url, with_database
from galdb.db.settings import OWNER_ROLE, Settings
from galdb.errors import GaldbError

pytestmark = pytest.mark.embedded  # makes login roles as the embedded superuser

GALDB_SCHEMAS = (
    "(SELECT nspname FROM pg_namespace WHERE nspname = 'galdb' OR nspname LIKE 'galdb\\_%')"
)
OWNERS = f"""
SELECT 'schema', nspname::text, pg_get_userbyid(nspowner) FROM pg_namespace
    WHERE nspname IN {GALDB_SCHEMAS}
UNION ALL
SELECT 'relation', c.oid::regclass::text, pg_get_userbyid(c.relowner) FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN {GALDB_SCHEMAS}
UNION ALL
SELECT 'function', p.oid::regprocedure::text, pg_get_userbyid(p.proowner) FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname IN {GALDB_SCHEMAS}
"""


def _not_owned(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    rows = conn.execute(OWNERS).fetchall()
    assert len(rows) > 50, rows
    return sorted(r for r in rows if r[2] != OWNER_ROLE)


@pytest.fixture
def login_roles(settings: Settings) -> Iterator:
    """Make login roles (members of the owner group or not) and settings that log in as them."""
    admin_url = database_url(settings)
    made: list[str] = []

    def make(member: bool) -> Settings:
        name = f"galdb_test_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE ROLE "{name}" LOGIN')
            if member:
                conn.execute(f'GRANT {OWNER_ROLE} TO "{name}"')
        made.append(name)
        parts = urlsplit(admin_url)
        netloc = name + "@" + parts.netloc.rsplit("@", 1)[-1]
        return Settings(home=settings.home, database_url=urlunsplit(parts._replace(netloc=netloc)))

    yield make
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP ROLE "{name}"')


def test_every_object_of_galdb_belongs_to_the_owner_role(conn, unique_release) -> None:
    # an object made at run time too: the embeddings table of a new model
    store_vectors(conn, np.eye(4, dtype=np.float32), unique_release, f"synthetic:{unique_release}")
    conn.commit()
    assert conn.execute("SELECT current_user").fetchone()[0] == OWNER_ROLE
    assert _not_owned(conn) == []


def test_a_member_replaces_what_another_member_made(login_roles, unique_release) -> None:
    alice, bob = login_roles(member=True), login_roles(member=True)
    with connect(alice) as conn:
        assert conn.execute("SELECT session_user <> current_user").fetchone()[0]
        record, _ = store_vectors(
            conn, np.eye(4, dtype=np.float32), unique_release, f"synthetic:{unique_release}"
        )
        conn.commit()
        table = f"galdb.{record.partition}"
    with connect(bob) as conn:
        # only an owner may index a table: bob may, as alice's table is the group's
        conn.execute(f"CREATE INDEX ON {table} (galaxy_id)")
        conn.commit()
        owner = conn.execute(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = %s::regclass", (table,)
        ).fetchone()[0]
    assert owner == OWNER_ROLE


def test_a_role_outside_the_owner_group_gets_a_clear_error(login_roles) -> None:
    stranger = login_roles(member=False)
    with pytest.raises(GaldbError, match=f"may not act as '{OWNER_ROLE}'.*GRANT {OWNER_ROLE}"):
        connect(stranger)


def test_db_init_without_the_rights_it_needs_says_which(settings, login_roles) -> None:
    """A login that owns its database but is no superuser and lacks CREATEROLE: first the
    missing pgvector, then the owner group it may not join, each named with what to run;
    nothing is left half-done."""
    plain = login_roles(member=False)
    user = urlsplit(plain.database_url).username
    name = f"galdb_rights_{uuid.uuid4().hex[:8]}"
    admin_url = database_url(settings)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{user}"')
    mine = Settings(home=settings.home, database_url=with_database(plain.database_url, name))
    try:
        with pytest.raises(GaldbError, match="CREATE EXTENSION vector"):
            admin.init(mine)
        assert migrate.current_revision(mine) is None
        with psycopg.connect(with_database(admin_url, name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
        with pytest.raises(GaldbError, match=f"lacks .*CREATEROLE.*GRANT galdb_owner TO {user}"):
            admin.init(mine)
        assert migrate.current_revision(mine) is None
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
