"""The embedded server under data directories with spaces, quotes, shell characters, non-ASCII
and long paths (each test starts and stops its own server, away from the session's one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from galdb.db import server
from galdb.db.connect import database_url
from galdb.db.settings import Settings

pytestmark = pytest.mark.embedded  # starts and stops embedded servers

ODD = 'Ångström galaxy\'s "home" $HOME `id` \\ #1,%20'


def _galdb(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GALDB_HOME": str(home)}
    env.pop("GALDB_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "galdb", *args], env=env, capture_output=True, text=True, timeout=180
    )


def test_cli_under_a_home_with_spaces_quotes_and_non_ascii(tmp_path):
    home = tmp_path / ODD
    try:
        init = _galdb(home, "db", "init")
        assert init.returncode == 0, init.stderr
        assert (home / "pgdata" / "PG_VERSION").exists()
        query = _galdb(home, "sql", "SELECT 41 + 1 AS answer")
        assert query.returncode == 0, query.stderr
        assert "42" in query.stdout
        status = _galdb(home, "db", "status")
        assert status.returncode == 0, status.stderr
        assert "up to date" in status.stdout
    finally:
        stopped = _galdb(home, "db", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stdout
    assert server.server_pid(home / "pgdata") is None


def test_long_home_uses_a_short_socket_directory(tmp_path):
    home = tmp_path / ("deep " * 30).strip() / ODD
    assert len(str(home / "pgdata" / ".s.PGSQL.5432").encode()) > 108
    settings = Settings(home=home)
    try:
        url = database_url(settings)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_database()").fetchone()[0] == "galdb"
        # a second call finds the running server again
        assert database_url(settings) == url
    finally:
        assert server.stop(settings.pgdata)
    assert server.server_pid(settings.pgdata) is None
    assert not server.stop(settings.pgdata)
