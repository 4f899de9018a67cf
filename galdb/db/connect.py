"""Connections: one code path for the embedded server and for ``GALDB_DATABASE_URL``.

Two kinds of connection exist. :func:`connect` is the owner's (it migrates, ingests and
writes). :func:`connect_reader` logs in as the ``galdb_reader`` role, which may only read the
``galdb`` schema; ``galdb sql`` uses it so that user-typed SQL never runs with write rights.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

from galdb.db import server
from galdb.db.settings import DATABASE_NAME, OWNER_ROLE, READER_ROLE, REVIEWER_ROLE, Settings
from galdb.errors import DatabaseError, GaldbError


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


def connect(
    settings: Settings, *, autocommit: bool = False, check_schema: bool = True
) -> psycopg.Connection:
    """Open an owner connection to galdb's database, acting as the ``galdb_owner`` role.

    The first connection of a process to a database checks that its schema is at the
    revision this galdb was written for (a clear error instead of missing-column tracebacks
    after an upgrade of galdb); ``check_schema=False`` skips that and stays the login role
    (migrations, role passwords).

    Checked connections ``SET ROLE galdb_owner`` (migration 0009), so that what galdb makes
    at run time (prediction tables, task views, kNN graphs) belongs to the owner group and
    any of its members may replace it; the login role must be a member. On a Citus
    coordinator they stay the login role: Citus opens its connections to the workers as the
    current role, and ``galdb_owner`` may not log in (see :mod:`galdb.db.citus`).
    """
    url = database_url(settings)
    try:
        conn = psycopg.connect(url, autocommit=autocommit)
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to {_redact(url)}: {exc}") from exc
    if not check_schema:
        return conn
    try:
        if url not in _SCHEMA_CHECKED:
            _check_schema(conn)
            _SCHEMA_CHECKED[url] = _on_citus(conn)
        if not _SCHEMA_CHECKED[url]:
            _act_as_owner(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _act_as_owner(conn: psycopg.Connection) -> None:
    try:
        conn.execute(f"SET ROLE {OWNER_ROLE}")
    except psycopg.errors.InsufficientPrivilege as exc:
        raise _not_an_owner(conn) from exc
    if not conn.autocommit:
        conn.commit()  # a rolled-back transaction would undo SET ROLE


def _not_an_owner(conn: psycopg.Connection) -> GaldbError:
    user = conn.info.user
    return GaldbError(
        f"the role {user!r} may not act as {OWNER_ROLE!r}, which owns galdb's tables: a "
        f'member of it must run GRANT {OWNER_ROLE} TO "{user}" (or connect as the role that '
        "ran `galdb db init`)"
    )


_SCHEMA_CHECKED: dict[str, bool] = {}  # URL -> whether it is a Citus coordinator


def _on_citus(conn: psycopg.Connection) -> bool:
    found = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'citus'").fetchone()
    conn.rollback()
    return found is not None


def _check_schema(conn: psycopg.Connection) -> None:
    from galdb.db.migrate import head_revision  # alembic reads its scripts: only when needed

    try:
        row = conn.execute("SELECT version_num FROM public.alembic_version").fetchone()
    except psycopg.errors.UndefinedTable:
        row = None
    except psycopg.errors.InsufficientPrivilege as exc:
        raise _not_an_owner(conn) from exc
    conn.rollback()
    head = head_revision()
    if row is None:
        raise GaldbError("the database has no galdb schema yet: run `galdb db init`")
    if row[0] != head:
        raise GaldbError(
            f"the database schema is at revision {row[0]} and this galdb needs {head}: run "
            "`galdb db migrate` (a newer galdb may have migrated it past this one: upgrade "
            "galdb)"
        )


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


def _connect_role(settings: Settings, role: str, secret: str) -> psycopg.Connection:
    url = _role_url(settings, role, role_password(settings, secret))
    try:
        return psycopg.connect(url)
    except psycopg.OperationalError as exc:
        raise DatabaseError(
            f"cannot log in as the role {role!r} ({exc}); run `galdb db init`"
        ) from exc


def connect_reader(settings: Settings) -> psycopg.Connection:
    """Open a connection as ``galdb_reader``; fails clearly if ``galdb db init`` was not run."""
    return _connect_role(settings, READER_ROLE, "reader")


def connect_reviewer(settings: Settings) -> psycopg.Connection:
    """Open a connection as ``galdb_reviewer``: it reads, leases, labels and adds decisions,
    and can never update or delete a decision."""
    return _connect_role(settings, REVIEWER_ROLE, "reviewer")


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        host = parts.netloc.rsplit("@", 1)[-1]
        return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
    return url


# SQLSTATEs meaning the server ended or refused the session: 57P01 admin shutdown (`galdb db
# stop`, pg_terminate_backend), 57P02 crash shutdown, 57P03 cannot connect now (starting or
# stopping), 57P05 idle session timeout; class 08 is "connection exception". Errors raised by
# the client itself (socket closed, server closed the connection unexpectedly) have none.
_SESSION_ENDED = frozenset({"57P01", "57P02", "57P03", "57P05"})
_CANNOT_CONNECT = ("connection failed", "connection is bad")
# torch re-raises a DataLoader worker's exception as the same class with the worker's
# traceback as message; it ends with "module.Class: message", whose message may go on over
# further lines (libpq's "server closed the connection unexpectedly" does).
_WORKER_LAST_LINE = re.compile(r"^[\w.]+: ")


def is_connection_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection is gone or could not be made (not a query error).

    A statement timeout or cancel (57014), a lock or a disk error is an ``OperationalError``
    too, but the session survives it; those are not connection failures.
    """
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _SESSION_ENDED


def _chain(exc: BaseException, *, implicit: bool = True) -> Iterator[BaseException]:
    """``exc``, then what it was raised from (or, if ``implicit``, during), down to the first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)  # SQLAlchemy keeps the driver's error here
        if current.__cause__ is not None:
            current = current.__cause__
        elif isinstance(orig, BaseException):
            current = orig
        else:
            current = current.__context__ if implicit else None


def _reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and "Original Traceback" in lines[1]:  # the error a worker raised
        starts = [i for i, line in enumerate(lines) if _WORKER_LAST_LINE.match(line)]
        tail = lines[starts[-1] :] if starts else lines[-1:]
        return _WORKER_LAST_LINE.sub("", " ".join(tail))
    return " ".join(lines) or type(exc).__name__


def as_connection_error(exc: BaseException) -> DatabaseError | None:
    """The :class:`DatabaseError` to report for ``exc`` if a lost connection caused it, else None.

    ``exc`` counts when it is itself a connection failure (also as SQLAlchemy's wrapper, or
    re-raised from a DataLoader worker), or when it is a :class:`GaldbError` other than
    :class:`DatabaseError` raised from one. Anything else (a bug whose clean-up happened to
    meet a dead connection included) returns ``None`` and keeps its traceback. The reason
    given is the first connection failure in the chain, the one that started it.
    """
    if isinstance(exc, DatabaseError):
        return None
    chain = list(_chain(exc))
    failures = [e for e in chain if is_connection_failure(e)]
    if not failures:
        return None
    top_is_failure = chain[0] is failures[0] or (
        len(chain) > 1 and chain[1] is failures[0] and hasattr(chain[0], "orig")
    )
    caused = isinstance(exc, GaldbError) and any(
        is_connection_failure(e) for e in _chain(exc, implicit=False)
    )
    if not (top_is_failure or caused):
        return None
    first = failures[-1]
    reason = _reason(first)
    if first.sqlstate == "57P03" or reason.startswith(_CANNOT_CONNECT):
        return DatabaseError(f"cannot connect to the database: {reason}")
    return DatabaseError(
        f"lost the connection to the database: {reason}; "
        "what was committed is kept, run the command again to resume"
    )
