"""Database administration behind ``galdb db``: init, status, url, stop, migrate."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import psycopg
import sqlalchemy.exc
from psycopg import sql

from galdb.db import citus, migrate, server
from galdb.db.connect import _redact, connect, database_url, reader_password, role_password
from galdb.db.settings import READER_ROLE, REVIEWER_ROLE, Settings
from galdb.errors import GaldbError


@dataclass
class Status:
    """What ``galdb db status`` reports."""

    url: str
    embedded: bool
    server_pid: int | None
    revision: str | None
    head: str
    counts: dict[str, int]
    versions: dict[str, str]

    @property
    def up_to_date(self) -> bool:
        return self.revision == self.head


def init(settings: Settings, *, citus: bool = False, shards: int | None = None) -> str:
    """Create (or bring up to date) galdb's database; return the schema revision.

    ``citus``: after the migrations, distribute galdb's tables over a Citus cluster (the
    server is its coordinator; see :mod:`galdb.db.citus`). A database distributed before is
    brought along without asking (new tables distributed the same way). ``shards``: the
    galaxies' shard count when first distributed (see :func:`galdb.db.citus.distribute`).

    On a server of your own the login role may lack a right the migrations need; that is a
    :class:`GaldbError` saying which, and what a superuser must do first (nothing is left
    half-done: the migrations run in one transaction).
    """
    try:
        revision = migrate.upgrade(settings)
        _set_reader_password(settings)
        _distribute(settings, asked=citus, shards=shards)
    except (psycopg.errors.InsufficientPrivilege, sqlalchemy.exc.DBAPIError) as exc:
        # alembic's own statements come wrapped by SQLAlchemy, the revisions' SQL does not
        cause = getattr(exc, "orig", exc)
        if not isinstance(cause, psycopg.errors.InsufficientPrivilege):
            raise
        raise GaldbError(_missing_right(settings, cause)) from exc
    return revision


def _distribute(settings: Settings, *, asked: bool, shards: int | None) -> None:
    with connect(settings, autocommit=True, check_schema=False) as conn:
        if asked or citus.is_galdb_distributed(conn):
            citus.distribute(conn, shards)


def _missing_right(settings: Settings, exc: psycopg.Error) -> str:
    user = urlsplit(database_url(settings)).username or "the login role"
    said = str(exc).splitlines()[0]
    if "extension" in said:
        todo = "a superuser must run CREATE EXTENSION vector in galdb's database first"
    elif "role" in said:
        todo = (
            f"give {user} CREATEROLE (galdb creates the roles galdb_reader, galdb_reviewer and "
            f"galdb_owner), or have a superuser create them and GRANT galdb_owner TO {user} "
            "WITH ADMIN OPTION"
        )
    else:
        todo = f"{user} must own galdb's database (CREATE DATABASE ... OWNER {user})"
    return (
        f"`galdb db init` needs a right that {user} lacks ({said}): {todo}. The README's "
        "section 'Your own PostgreSQL server' lists what galdb needs."
    )


def _set_reader_password(settings: Settings) -> None:
    """Give the login roles (reader, reviewer) their passwords from the home directory."""
    with connect(settings, autocommit=True, check_schema=False) as conn:
        for role, password in (
            (READER_ROLE, reader_password(settings)),
            (REVIEWER_ROLE, role_password(settings, "reviewer")),
        ):
            conn.execute(
                sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)
                )
            )


def status(settings: Settings) -> Status:
    """Server, schema revision, row counts and versions of PostgreSQL and pgvector."""
    url = database_url(settings)
    revision = migrate.current_revision(settings)
    counts: dict[str, int] = {}
    with psycopg.connect(url) as conn:
        versions = {
            "postgresql": conn.execute("SHOW server_version").fetchone()[0],
            "pgvector": (
                conn.execute(
                    "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
                ).fetchone()
                or ["not installed"]
            )[0],
        }
        if revision:
            for table in ("surveys", "releases", "galaxies", "ingest_runs", "quarantine"):
                query = sql.SQL("SELECT count(*) FROM galdb.{}").format(sql.Identifier(table))
                counts[table] = conn.execute(query).fetchone()[0]
    return Status(
        url=_redact(url),
        embedded=settings.embedded,
        server_pid=server.server_pid(settings.pgdata) if settings.embedded else None,
        revision=revision,
        head=migrate.head_revision(),
        counts=counts,
        versions=versions,
    )
