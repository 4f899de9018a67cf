"""A local Citus cluster from the embedded server's binaries: a coordinator and N workers.

    python scripts/build_citus.py                       # once: builds and installs Citus
    python scripts/citus_cluster.py start DIR [--workers 2]   # prints the coordinator's URL
    python scripts/citus_cluster.py stop DIR

Each node is a plain PostgreSQL 18 server (``initdb``, its own data directory DIR/nodeN and a
TCP port on 127.0.0.1, trust authentication: a throw-away test cluster) started with
``shared_preload_libraries = 'citus'``. On every node ``CREATE EXTENSION citus`` and
``CREATE EXTENSION vector`` run in the ``postgres`` database; the coordinator registers itself
(``citus_set_coordinator_host``) and the workers (``citus_add_node``). galdb then uses the
coordinator's URL like any external server (``GALDB_DATABASE_URL``) and ``galdb db init
--citus`` distributes its tables. The tests (tests/citus/) and benchmarks/bench_citus.py start
one this way.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import psycopg

from galdb.db import server

DATABASE = "postgres"
STATE = "cluster.json"


def _as_server_user(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, user=server._system_user())
    if done.returncode != 0:
        raise RuntimeError(f"{Path(cmd[0]).name} failed: {done.stdout}{done.stderr}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def url(port: int) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}"


# A throw-away test cluster need not survive a crash; benchmarks pass durable settings.
TEST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def _start_node(root: Path, name: str, port: int, settings: dict[str, str]) -> None:
    binaries = server._bin_path()
    data = root / name
    _as_server_user(
        [str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync"]
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} "
        "-c shared_preload_libraries=citus -c max_connections=200 "
        + " ".join(f"-c {key}={value}" for key, value in settings.items())
    )
    _as_server_user(
        [str(binaries / "pg_ctl"), "-D", str(data), "-l", str(root / f"{name}.log")]
        + ["-o", options, "-w", "start"]
    )
    with psycopg.connect(url(port), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION citus")
        conn.execute("CREATE EXTENSION vector")


def start(root: Path, workers: int = 2, settings: dict[str, str] | None = None) -> str:
    """Start the cluster under ``root``; return the coordinator's URL. ``settings``: server
    settings of every node (default :data:`TEST_SETTINGS`)."""
    root.mkdir(parents=True, exist_ok=True)
    _own(root)
    ports = [_free_port() for _ in range(workers + 1)]
    names = ["coordinator"] + [f"worker{i}" for i in range(1, workers + 1)]
    (root / STATE).write_text(json.dumps(names))
    for name, port in zip(names, ports, strict=True):
        _start_node(root, name, port, TEST_SETTINGS if settings is None else settings)
    with psycopg.connect(url(ports[0]), autocommit=True) as conn:
        conn.execute("SELECT citus_set_coordinator_host('127.0.0.1', %s)", (ports[0],))
        for port in ports[1:]:
            conn.execute("SELECT citus_add_node('127.0.0.1', %s)", (port,))
    return url(ports[0])


def _own(path: Path) -> None:
    user = server._system_user()
    if user is not None:
        shutil.chown(path, user)


def stop(root: Path) -> None:
    """Stop every node started under ``root`` (those not running are skipped)."""
    binaries = server._bin_path()
    names = json.loads((root / STATE).read_text()) if (root / STATE).is_file() else []
    for name in reversed(names):
        if (root / name / "postmaster.pid").is_file():
            pg_ctl = str(binaries / "pg_ctl")
            _as_server_user([pg_ctl, "-D", str(root / name), "-m", "fast", "stop"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.action == "start":
        print(start(args.dir.resolve(), args.workers))
    else:
        stop(args.dir.resolve())


if __name__ == "__main__":
    sys.exit(main())
