"""Apply the alembic migrations in ``migrations/`` (package ``galdb.migrations``); report
the schema revision.

Migrations are frozen: a revision means the same thing forever. Each one carries all the
SQL it runs as text in its own module (functions and views included), and reads no file and
imports no galdb code that later versions may change; :func:`run_sql` is the only helper it
uses. Changing a table, function or view that a released revision made is a new revision
(``CREATE OR REPLACE FUNCTION`` / ``VIEW`` with the new text), never an edit of the old one.
Then a database upgraded from the first revision equals a fresh one;
``tests/db/test_schema_history.py`` checks it against committed dumps of old databases.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from galdb.db.connect import sqlalchemy_url
from galdb.db.settings import Settings


def scripts_dir() -> Path:
    """Where the alembic environment and revisions are: the repository's top-level
    ``migrations/``, installed as the package ``galdb.migrations``."""
    import galdb.migrations

    return Path(galdb.migrations.__file__).parent


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(scripts_dir()))
    return cfg


def run_sql(script: str) -> None:
    """Run a multi-statement SQL script inside the current migration's transaction.

    It goes to psycopg with no parameters, so ``%`` (as in ``format('%s', …)``) and ``:name``
    reach PostgreSQL untouched.
    """
    from alembic import op

    op.get_bind().connection.driver_connection.execute(script)


def head_revision() -> str:
    """The newest revision this version of galdb knows."""
    return ScriptDirectory.from_config(_config()).get_current_head() or ""


def base_revision() -> str:
    """The oldest revision, the one a database never migrated starts from."""
    return ScriptDirectory.from_config(_config()).get_base() or ""


def current_revision(settings: Settings) -> str | None:
    """The revision the database is at, ``None`` for a database never migrated."""
    engine = create_engine(sqlalchemy_url(settings))
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def upgrade(settings: Settings, revision: str = "head") -> str:
    """Migrate the database to ``revision``; return the revision reached."""
    return _run(settings, command.upgrade, revision)


def downgrade(settings: Settings, revision: str) -> str:
    """Migrate the database back to ``revision`` (data of newer tables is lost)."""
    return _run(settings, command.downgrade, revision)


def _run(settings: Settings, step, revision: str) -> str:
    engine = create_engine(sqlalchemy_url(settings))
    cfg = _config()
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            step(cfg, revision)
    finally:
        engine.dispose()
    return current_revision(settings) or ""
