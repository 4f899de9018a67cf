"""Database administration behind ``galdb db``: init, status, url, stop, migrate."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from galdb.db import migrate, server
from galdb.db.connect import _redact, connect, database_url, reader_password, role_password
from galdb.db.settings import READER_ROLE, REVIEWER_ROLE, Settings


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


def init(settings: Settings) -> str:
    """Create (or bring up to date) galdb's database; return the schema revision."""
    revision = migrate.upgrade(settings)
    _set_reader_password(settings)
    return revision


def _set_reader_password(settings: Settings) -> None:
    """Give the login roles (reader, reviewer) their passwords from the home directory."""
    with connect(settings, autocommit=True) as conn:
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
