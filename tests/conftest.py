"""Test fixtures: one embedded PostgreSQL per test session, real data where present.

Tests isolate themselves by release name (``unique_release``) rather than by truncating
tables, so slow fixtures (ingesting the real sets) can be shared by a whole module.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings as hypothesis_settings

from galdb.db import admin, server
from galdb.db.connect import connect
from galdb.db.settings import Settings

# Property-based tests explore new examples on every local run; CI (HYPOTHESIS_PROFILE=ci, set
# by .ci/run) replays a fixed, derandomized set so a landing is judged on the same cases.
hypothesis_settings.register_profile("ci", derandomize=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
_counter = itertools.count()


# The external-server run (.ci/run): the tests use this server instead of an embedded one.
EXTERNAL_URL = os.environ.get("GALDB_TEST_DATABASE_URL")


@pytest.fixture(scope="session")
def settings() -> Iterator[Settings]:
    """A fresh galdb home with a migrated database, shared by the session: an embedded server,
    or the server of ``GALDB_TEST_DATABASE_URL`` (a user's ``GALDB_DATABASE_URL`` is never
    used: tests write to the database)."""
    home = Path(tempfile.mkdtemp(prefix="galdb-test-"))
    os.environ["GALDB_HOME"] = str(home)  # so CLI subprocesses find the same server
    os.environ.pop("GALDB_DATABASE_URL", None)
    if EXTERNAL_URL:
        os.environ["GALDB_DATABASE_URL"] = EXTERNAL_URL
    s = Settings.from_env()
    admin.init(s)
    yield s
    if s.embedded:
        server.stop(s.pgdata)
    shutil.rmtree(home, ignore_errors=True)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if EXTERNAL_URL and item.get_closest_marker("embedded"):
        pytest.skip("needs the embedded server (this run uses GALDB_TEST_DATABASE_URL)")


@pytest.fixture
def conn(settings: Settings) -> Iterator[psycopg.Connection]:
    """An owner connection, closed after the test."""
    with connect(settings) as c:
        yield c


@pytest.fixture
def unique_release(request: pytest.FixtureRequest) -> str:
    """A release name no other test uses."""
    return f"t{next(_counter)}-{request.node.name[:40]}"


def real_dir(name: str) -> Path:
    """A folder of ../shared/data/real, or skip the test with the reason."""
    path = REAL / name
    if not path.exists():
        pytest.skip(f"real data {path} is absent (it lives beside the repo in ../shared)")
    return path


def kill_midway(
    cmd: list[str], conn: psycopg.Connection, stored, at_least: int, timeout: float = 120
) -> int:
    """Run a galdb command and SIGKILL it once ``stored()`` reports ``at_least`` rows.

    ``stored`` is called with ``conn`` (rolled back before each poll, to see new commits);
    returns the last count seen, so the caller can check the kill happened midway.
    """
    env = {**os.environ}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    count, deadline = 0, time.time() + timeout
    while proc.poll() is None and time.time() < deadline:
        conn.rollback()
        count = stored(conn)
        if count >= at_least:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    conn.rollback()
    return count
