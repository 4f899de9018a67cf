"""A plain PostgreSQL server, as a site would run one, for testing galdb's external-server path.

    python scripts/external_server.py start DIR [--port N]   # prints the URL galdb uses
    python scripts/external_server.py stop DIR

It uses the embedded server's binaries but none of galdb's set-up: its own data directory
(DIR/data), a TCP port on 127.0.0.1, password (SCRAM) authentication for every connection, and
a database owned by a login role ``galdb_ci`` that is not a superuser. What a DBA must do for
galdb beforehand (see the README's "Your own PostgreSQL server") is done here as the bootstrap
superuser: the login role with CREATEROLE (galdb's migrations create the reader, reviewer and
owner roles), the database, and ``CREATE EXTENSION vector`` (pgvector is not a trusted
extension). Everything else is ``galdb db init``'s, run as ``galdb_ci``.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import psycopg

from galdb.db import server

LOGIN, DATABASE = "galdb_ci", "galdb_ci"


def _as_server_user(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, user=server._system_user())
    if done.returncode != 0:
        sys.exit(f"{Path(cmd[0]).name} failed: {done.stdout}{done.stderr}")


def _own(path: Path) -> None:
    user = server._system_user()
    if user is not None:
        shutil.chown(path, user)


def start(root: Path, port: int) -> str:
    binaries = server._bin_path()
    root.mkdir(parents=True, exist_ok=True)
    _own(root)
    data, secret = root / "data", root / "superuser.secret"
    superuser_password = secrets.token_urlsafe(16)
    secret.write_text(superuser_password)
    _own(secret)
    _as_server_user(
        [str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=scram-sha-256"]
        + [f"--pwfile={secret}", "--no-sync"]
    )
    secret.unlink()
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root}"
    _as_server_user(
        [str(binaries / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", options]
        + ["-w", "start"]
    )
    base = f"postgresql://postgres:{superuser_password}@127.0.0.1:{port}"
    password = secrets.token_urlsafe(16)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {LOGIN} LOGIN CREATEROLE PASSWORD '{password}'")
        conn.execute(f"CREATE DATABASE {DATABASE} OWNER {LOGIN}")
    with psycopg.connect(f"{base}/{DATABASE}", autocommit=True) as conn:
        conn.execute("CREATE EXTENSION vector")
    return f"postgresql://{LOGIN}:{password}@127.0.0.1:{port}/{DATABASE}"


def stop(root: Path) -> None:
    binaries = server._bin_path()
    _as_server_user([str(binaries / "pg_ctl"), "-D", str(root / "data"), "-m", "fast", "stop"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--port", type=int, default=0, help="default: a free one")
    args = parser.parse_args()
    if args.action == "start":
        print(start(args.dir.resolve(), args.port or _free_port()))
    else:
        stop(args.dir.resolve())


if __name__ == "__main__":
    main()
