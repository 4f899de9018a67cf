"""The built wheel works without the repository: its migrations and the default encoder's
weights travel inside it.

The alembic history lives in the repository's top-level ``migrations/`` and is mapped into the
package (``galdb.migrations``) at build time; ``galdb:default``'s weights are package data
(``galdb/lvm/weights/default.pt``). This builds a wheel, installs it (without its
dependencies) into a fresh virtual environment outside the repository, and runs ``galdb db init``
and the demo's first steps (simulate, ingest, cone search, embed with the default encoder)
there, from a directory that is not the repository. The fresh environment borrows this one's
third-party packages through a ``.pth`` line so that the test does not reinstall torch; galdb
itself must come from the wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from galdb.db import server

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.embedded]


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--wheel-dir", str(out), str(ROOT)],
        cwd=out,
    )
    (path,) = out.glob("galdb-*.whl")
    return path


def test_wheel_carries_the_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    revisions = sorted(p.name for p in (ROOT / "migrations" / "versions").glob("*.py"))
    assert revisions, "no revisions in migrations/versions"
    for name in ["env.py", "script.py.mako", *(f"versions/{r}" for r in revisions)]:
        assert f"galdb/migrations/{name}" in names, f"{name} is missing from the wheel"
    assert not any(n.startswith("migrations/") for n in names), "a top-level package leaked"


def test_wheel_carries_the_default_encoder(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        info = archive.getinfo("galdb/lvm/weights/default.pt")  # KeyError if missing
        shipped = ROOT / "galdb" / "lvm" / "weights" / "default.pt"
        assert archive.read(info) == shipped.read_bytes()


@pytest.mark.timeout(600)  # torch is imported for the embed: minutes on a loaded machine
def test_wheel_installs_and_runs_outside_the_repository(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            cwd=tmp_path,
        ).strip()
    )
    # Dependencies (torch, astropy, ...) from this environment; galdb only from the wheel.
    (site / "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        cwd=tmp_path,
    )

    work = tmp_path / "elsewhere"
    work.mkdir()
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("GALDB_DATABASE_URL", "PYTHONPATH")}
    env |= {"GALDB_HOME": str(home), "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}"}
    galdb = str(venv / "bin" / "galdb")
    try:
        code = "import galdb, galdb.lvm.builtin as b; print(galdb.__file__)\n"
        code += "print(b.existing_builtin('default'))"
        where, weights = _run([str(python), "-c", code], work, env).splitlines()
        assert Path(where).is_relative_to(site), f"galdb imported from {where}"
        assert Path(weights).is_relative_to(site), f"galdb:default read from {weights}"
        head = sorted(
            p.stem.split("_")[0] for p in (ROOT / "migrations" / "versions").glob("*.py")
        )[-1]
        assert _run([galdb, "db", "init"], work, env).split()[-1] == head
        assert f"{head} (up to date)" in _run([galdb, "db", "status"], work, env)
        _run([galdb, "simulate", "sim", "--n", "12", "--seed", "3", "--size", "32"], work, env)
        out = _run(
            [galdb, "ingest", "sim", "--catalog", "sim/catalog.csv", "--release", "wheel-1"],
            work,
            env,
        )
        assert "12 inserted" in out
        _run(
            [galdb, "cone", "150", "2", "2deg", "--release", "wheel-1", "--out", "cone.csv"],
            work,
            env,
        )
        rows = (work / "cone.csv").read_text().splitlines()
        assert len(rows) == 1 + 12, rows[:3]
        out = _run([galdb, "embed", "-r", "wheel-1", "--workers", "0"], work, env)
        assert "(galdb:default, 512-d): 12 galaxies embedded" in " ".join(out.split()), out
    finally:
        server.stop(home / "pgdata")
