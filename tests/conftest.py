"""Test fixtures: one embedded PostgreSQL per test session, real data where present.

Tests isolate themselves by release name (``unique_release``) rather than by truncating
tables, so slow fixtures (ingesting the real sets) can be shared by a whole module.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from galdb.db import admin, server
from galdb.db.connect import connect
from galdb.db.settings import Settings

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
_counter = itertools.count()


@pytest.fixture(scope="session")
def settings() -> Iterator[Settings]:
    """A fresh galdb home with a migrated embedded database, shared by the session."""
    home = Path(tempfile.mkdtemp(prefix="galdb-test-"))
    os.environ["GALDB_HOME"] = str(home)  # so CLI subprocesses find the same server
    os.environ.pop("GALDB_DATABASE_URL", None)
    s = Settings.from_env()
    admin.init(s)
    yield s
    server.stop(s.pgdata)
    shutil.rmtree(home, ignore_errors=True)


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
