"""Connections: one code path for the embedded server and for ``GALDB_DATABASE_URL``.

Two kinds of connection exist. :func:`connect` is the owner's (it migrates, ingests and
writes). :func:`connect_reader` logs in as the ``galdb_reader`` role, which may only read the
``galdb`` schema; ``galdb sql`` uses it so that user-typed SQL never runs with write rights.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

from galdb.db import server
from galdb.db.settings import DATABASE_NAME, READER_ROLE, REVIEWER_ROLE, Settings
from galdb.errors import DatabaseError


def _normalise(url: str) -> str:
    # SQLAlchemy-style URLs name the driver; libpq does not understand that part.
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


def database_url(settings: Settings) -> str:
    """The libpq URL of galdb's database, starting the embedded server if that is the one used."""
    if not settings.embedded:
        return _normalise(settings.database_url or "")
    admin_url = server.ensure_running(settings.pgdata)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    return with_database(admin_url, DATABASE_NAME)


def sqlalchemy_url(settings: Settings) -> str:
    """The same URL for SQLAlchemy (psycopg 3 driver)."""
    return database_url(settings).replace("postgresql://", "postgresql+psycopg://", 1)


def connect(settings: Settings, *, autocommit: bool = False) -> psycopg.Connection:
    """Open an owner connection to galdb's database."""
    url = database_url(settings)
    try:
        return psycopg.connect(url, autocommit=autocommit)
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to {_redact(url)}: {exc}") from exc


def reader_password(settings: Settings) -> str:
    """The reader role's password, made on first use and kept in ``<home>/reader.secret``."""
    return role_password(settings, "reader")


def role_password(settings: Settings, name: str) -> str:
    """A login role's password, made on first use and kept in ``<home>/<name>.secret``."""
    path = settings.home / f"{name}.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def reader_url(settings: Settings) -> str:
    """URL that logs in as the read-only role (same host and database as the owner's)."""
    return _role_url(settings, READER_ROLE, reader_password(settings))


def _role_url(settings: Settings, role: str, password: str) -> str:
    parts = urlsplit(database_url(settings))
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{role}:{quote(password, safe='')}@{host}"))


def connect_reviewer(settings: Settings) -> psycopg.Connection:
    """Open a connection as ``galdb_reviewer``: it reads, leases, labels and adds decisions,
    and can never update or delete a decision."""
    url = _role_url(settings, REVIEWER_ROLE, role_password(settings, "reviewer"))
    try:
        return psycopg.connect(url)
    except psycopg.OperationalError as exc:
        raise DatabaseError(
            f"cannot log in as the reviewer role {REVIEWER_ROLE!r} ({exc}); run `galdb db init`"
        ) from exc


def connect_reader(settings: Settings) -> psycopg.Connection:
    """Open a connection as ``galdb_reader``; fails clearly if ``galdb db init`` was not run."""
    url = reader_url(settings)
    try:
        return psycopg.connect(url)
    except psycopg.OperationalError as exc:
        raise DatabaseError(
            f"cannot log in as the read-only role {READER_ROLE!r} ({exc}); run `galdb db init`"
        ) from exc


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        host = parts.netloc.rsplit("@", 1)[-1]
        return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
    return url
