"""A real Citus cluster (coordinator + 2 workers) for the tests marked ``citus``.

The cluster runs from the embedded server's binaries with Citus built by
scripts/build_citus.py (cached; CI builds it). Without that build every test here is skipped
with the reason. The ``settings`` fixture here points galdb at the coordinator: the tests in
this folder use the cluster, never the embedded server; each test sees ``GALDB_DATABASE_URL``
and ``GALDB_HOME`` of the cluster (restored afterwards), so CLI subprocesses use it too.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from galdb.db import admin
from galdb.db.settings import Settings

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
SHARDS = 4  # of the galaxies and their co-located tables: few, so a test cluster is quick


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_citus = _script("build_citus")
citus_cluster = _script("citus_cluster")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.citus)


@pytest.fixture(scope="session")
def cluster_url() -> Iterator[str]:
    """The coordinator's URL of a fresh cluster (superuser ``postgres``, trust auth)."""
    if not build_citus.is_installed(build_citus.cache_dir()):
        pytest.skip(
            f"Citus is not built for the embedded server (cache {build_citus.cache_dir()}): "
            "run python scripts/build_citus.py"
        )
    root = Path(tempfile.mkdtemp(prefix="galdb-citus-"))
    try:
        yield citus_cluster.start(root, workers=2)
    finally:
        citus_cluster.stop(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(cluster_url: str) -> Iterator[Settings]:
    """galdb on the cluster: migrated and distributed (``galdb db init --citus``)."""
    home = Path(tempfile.mkdtemp(prefix="galdb-citus-home-"))
    s = Settings(home=home, database_url=cluster_url)
    admin.init(s, citus=True, shards=SHARDS)
    yield s
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(autouse=True)
def _cluster_env(request: pytest.FixtureRequest) -> Iterator[None]:
    """CLI subprocesses of a test that uses ``settings`` talk to the cluster."""
    if "settings" not in request.fixturenames:
        yield
        return
    s: Settings = request.getfixturevalue("settings")
    saved = {k: os.environ.get(k) for k in ("GALDB_DATABASE_URL", "GALDB_HOME")}
    os.environ.update(GALDB_DATABASE_URL=s.database_url, GALDB_HOME=str(s.home))
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def cluster(cluster_url: str) -> Iterator[psycopg.Connection]:
    """A superuser connection to the coordinator (autocommit)."""
    with psycopg.connect(cluster_url, autocommit=True) as c:
        yield c
