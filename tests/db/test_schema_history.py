"""A database upgraded from an old revision has exactly the schema of a freshly migrated one.

Every ``tests/db/dumps/<revision>.sql`` (a plain-SQL ``pg_dump`` of a small galdb database at
that revision, rows included; ``scripts/make_schema_dump.py`` writes them and says how) is
restored into a new database on the session's server and upgraded to head. Its
``pg_dump --schema-only --create`` must then equal that of a new database migrated from
nothing, grants, comments, function bodies and ``ALTER DATABASE ... SET`` included; only the
database's own name differs, and is replaced. The rows of the dump must still be there.

Because migrations are frozen (each carries its own SQL), this holds for as long as nobody
edits a revision already released, or makes one read something that changes later: a dump
made at 0001 keeps 0001's functions and views, a fresh database would get the edited ones,
and the two schemas differ.
"""

from __future__ import annotations

import ast
import difflib
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from galdb.db import migrate, server
from galdb.db.connect import with_database
from galdb.db.settings import Settings

pytestmark = pytest.mark.embedded  # makes scratch databases as the embedded superuser

VERSIONS = migrate.scripts_dir() / "versions"
DUMPS = sorted((Path(__file__).parent / "dumps").glob("*.sql"))
RESTRICT_KEY = "galdbcompare"  # psql's \restrict key; fixed so that two dumps can be compared


def _pg_tool(name: str) -> str:
    return str(server._bin_path() / name)


def _run(args: list[str]) -> str:
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr}")
    return done.stdout


@pytest.fixture
def new_database(settings: Settings) -> Iterator[Callable[[str], tuple[str, Settings]]]:
    """Make empty databases on the session's server: ``(name, settings)``; dropped afterwards."""
    admin_url = server.ensure_running(settings.pgdata)
    made: list[str] = []

    def make(purpose: str) -> tuple[str, Settings]:
        name = f"galdb_{purpose}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return name, Settings(home=settings.home, database_url=with_database(admin_url, name))

    yield make
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _url(settings: Settings) -> str:
    assert settings.database_url is not None
    return settings.database_url


def restore(dump: Path, settings: Settings) -> None:
    """Run a plain-SQL dump into an empty database, stopping at the first error."""
    _run(
        [
            _pg_tool("psql"),
            "--no-psqlrc",
            "--quiet",
            "--single-transaction",
            "--set",
            "ON_ERROR_STOP=1",
            "--file",
            str(dump),
            "--dbname",
            _url(settings),
        ]
    )


def schema_of(name: str, settings: Settings) -> str:
    """``pg_dump --schema-only --create`` of a database, its name replaced by ``<database>``.

    ``--create`` adds the database's own settings (``ALTER DATABASE ... SET search_path``) and
    privileges. pg_dump sorts objects by kind and name, so identical schemas print identically;
    the name is the only thing that must differ. It is unique (a uuid part), so replacing it
    cannot touch anything else.
    """
    text = _run(
        [
            _pg_tool("pg_dump"),
            "--schema-only",
            "--create",
            "--restrict-key",
            RESTRICT_KEY,
            "--dbname",
            _url(settings),
        ]
    )
    assert name in text
    return text.replace(name, "<database>")


def database_settings(settings: Settings) -> list[tuple[str | None, list[str]]]:
    """Settings made by ``ALTER DATABASE/ROLE ... SET`` for this database: (role, setconfig)."""
    with psycopg.connect(_url(settings)) as conn:
        return conn.execute(
            "SELECT r.rolname, s.setconfig FROM pg_db_role_setting s "
            "LEFT JOIN pg_roles r ON r.oid = s.setrole "
            "WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " ORDER BY r.rolname NULLS FIRST"
        ).fetchall()


def row_counts(settings: Settings) -> dict[str, int]:
    """Rows of every table of the ``galdb`` schema (partitions counted through their parent)."""
    with psycopg.connect(_url(settings)) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'galdb' AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
                "ORDER BY 1"
            )
        ]
        return {t: conn.execute(f'SELECT count(*) FROM galdb."{t}"').fetchone()[0] for t in tables}


def _diff(expected: str, got: str) -> str:
    lines = difflib.unified_diff(
        expected.splitlines(), got.splitlines(), "fresh", "upgraded", lineterm="", n=2
    )
    return "\n".join(lines)


@pytest.mark.parametrize("dump", DUMPS, ids=[d.stem for d in DUMPS])
def test_upgraded_database_equals_a_fresh_one(dump: Path, new_database) -> None:
    fresh_name, fresh = new_database("fresh")
    assert migrate.upgrade(fresh) == migrate.head_revision()

    old_name, old = new_database("upgraded")
    restore(dump, old)
    assert migrate.current_revision(old) == dump.stem
    before = row_counts(old)
    assert before and all(before.values()), f"{dump.name} should have rows in every table"
    assert migrate.upgrade(old) == migrate.head_revision()

    after = row_counts(old)
    assert {t: after[t] for t in before} == before
    expected, got = schema_of(fresh_name, fresh), schema_of(old_name, old)
    if got != expected:
        pytest.fail(f"upgraded from {dump.stem} differs from fresh:\n{_diff(expected, got)}")
    assert database_settings(old) == database_settings(fresh)


def test_the_oldest_revision_has_a_dump() -> None:
    """Upgrading is tested from the first revision galdb has (add a dump when that changes)."""
    assert migrate.base_revision() in [d.stem for d in DUMPS]


# What a revision may use: alembic, SQLAlchemy and the runner's helper for its own SQL text.
# Anything else of galdb (a .sql file, a module's SQL builder, a constant) changes with later
# code, and would make the same revision mean something else tomorrow.
ALLOWED_IMPORTS = {"__future__", "alembic", "sqlalchemy"}
ALLOWED_FROM_GALDB = {"galdb.db.migrate": {"run_sql"}}


def _uses_outside_the_revision(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules = [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [(node.module or "", a.name) for a in node.names]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute):
            name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
            if name in {"open", "read_text", "read_bytes", "__import__", "import_module"}:
                found.append(f"line {node.lineno}: calls {name}()")
            continue
        else:
            continue
        for module, name in modules:
            if module.split(".")[0] in ALLOWED_IMPORTS or name in ALLOWED_FROM_GALDB.get(
                module, ()
            ):
                continue
            what = f"{module}.{name}" if name else module
            found.append(f"line {node.lineno}: imports {what}")
    return found


@pytest.mark.parametrize("path", sorted(VERSIONS.glob("[0-9]*.py")), ids=lambda p: p.stem)
def test_revisions_carry_their_own_sql(path: Path) -> None:
    """A revision reads no file and imports nothing of galdb beyond ``run_sql``.

    The dump test above only notices a live file read by a revision at or before its dump's;
    this rule covers every revision, the newest included.
    """
    assert _uses_outside_the_revision(path) == [], f"{path.name} depends on code that changes"


SCHEMA_FILE = Path(__file__).resolve().parents[2] / "sql" / "schema.sql"


def test_sql_schema_file_is_the_head_schema(new_database) -> None:
    """``sql/schema.sql`` is the schema a fresh database has at head, for reading and review
    (a new revision shows up as a diff of it). It is generated, never applied: the revisions
    carry their own SQL. Regenerate with
    ``GALDB_WRITE_SCHEMA=1 python -m pytest tests/db/test_schema_history.py -k sql_schema``."""
    name, fresh = new_database("head")
    migrate.upgrade(fresh)
    text = schema_of(name, fresh)
    header = (
        f"-- galdb's schema at revision {migrate.head_revision()}: pg_dump --schema-only of a\n"
        "-- fresh database. Generated by tests/db/test_schema_history.py; never applied (the\n"
        "-- revisions in migrations/versions carry their own SQL).\n"
    )
    if os.environ.get("GALDB_WRITE_SCHEMA"):
        SCHEMA_FILE.parent.mkdir(exist_ok=True)
        SCHEMA_FILE.write_text(header + text)
    assert SCHEMA_FILE.exists(), f"{SCHEMA_FILE} is missing"
    stored = SCHEMA_FILE.read_text()
    if stored != header + text:
        pytest.fail(
            "sql/schema.sql is not the head schema; regenerate it (see this test's docstring):\n"
            + _diff(stored, header + text)
        )
