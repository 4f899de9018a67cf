"""A connection lost mid-command ends with one line and exit status 3, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from galdb.cli import main
from galdb.datasets.hdf5 import write_ssl_legacysurvey
from galdb.db import admin, server
from galdb.db.connect import connect
from galdb.db.settings import Settings
from galdb.ingest import ingest

SPEC = "timm:test_efficientnet"


def _start(home: Path, *args: str, appname: str = "galdb-test") -> subprocess.Popen:
    # libpq takes the application name from PGAPPNAME: the test finds the command's backends
    env = {**os.environ, "GALDB_HOME": str(home), "COLUMNS": "80", "PGAPPNAME": appname}
    env.pop("GALDB_DATABASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "galdb", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _poll(what, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := what():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what.__doc__}")


def _assert_lost_connection(proc: subprocess.Popen) -> str:
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    # the message is one line, the last one (a progress bar may stand above it)
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], err
    assert "lost the connection to the database" in lines[-1]
    assert "what was committed is kept, run the command again" in lines[-1]
    assert proc.returncode == 3, err
    return lines[-1]


@pytest.mark.embedded  # a superuser ends the sessions
def test_sql_backend_terminated(settings):
    # the server's administrator (the login superuser, not galdb_owner) ends the session
    conn = connect(settings, autocommit=True, check_schema=False)
    marker = f"lost-{uuid.uuid4().hex[:8]}"
    proc = _start(settings.home, "sql", "SELECT pg_sleep(60)", appname=marker)
    try:

        def backend():
            """the sql command's backend"""
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND application_name = %s",
                (marker,),
            ).fetchone()
            return row and row[0]

        conn.execute("SELECT pg_terminate_backend(%s)", (_poll(backend),))
        line = _assert_lost_connection(proc)
        assert "terminating connection due to administrator command" in line
    finally:
        conn.close()
        if proc.poll() is None:
            proc.kill()


@pytest.mark.embedded
def test_embed_while_the_server_is_stopped(tmp_path):
    """`galdb db stop` while `galdb embed` runs with DataLoader workers (its own server)."""
    settings = Settings(home=tmp_path / "home")
    admin.init(settings)
    proc = None
    try:
        with connect(settings) as conn:
            h5 = write_ssl_legacysurvey(tmp_path / "ssl.h5", 3000, size=32, seed=3)
            ingest(conn, h5, "lost")
        proc = _start(
            settings.home,
            "embed", "-m", SPEC, "-r", "lost", "--input-size", "32",
            "--batch-size", "4", "--workers", "2",
        )  # fmt: skip
        with connect(settings, autocommit=True) as conn:

            def some_stored():
                """a few vectors committed"""
                if proc.poll() is not None:
                    return True
                row = conn.execute("SELECT model_id FROM galdb.models").fetchone()
                if row is None:
                    return 0
                n = conn.execute(f"SELECT count(*) FROM galdb.embeddings_m{row[0]}").fetchone()
                return n[0] >= 40 and n[0]

            stored = _poll(some_stored, timeout=280)
            assert proc.poll() is None, proc.communicate()
        stop = _start(settings.home, "db", "stop")
        assert stop.wait(timeout=120) == 0
        stop.communicate()
        _assert_lost_connection(proc)
        # what was committed is kept
        with connect(settings) as conn:
            model_id = conn.execute("SELECT model_id FROM galdb.models").fetchone()[0]
            kept = conn.execute(f"SELECT count(*) FROM galdb.embeddings_m{model_id}").fetchone()
        assert stored <= kept[0] < 3000
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.communicate()
        server.stop(settings.pgdata)


@pytest.mark.embedded  # a superuser ends the sessions
def test_embed_worker_connection_terminated(settings, conn, unique_release, tmp_path):
    """A DataLoader worker's backend is terminated: torch re-raises its error in the main."""
    h5 = write_ssl_legacysurvey(tmp_path / "ssl.h5", 3000, size=32, seed=4)
    ingest(conn, h5, unique_release)
    conn.commit()
    conn.autocommit = True
    conn.execute("RESET ROLE")  # the server's administrator (superuser) ends the sessions
    marker = f"lost-{uuid.uuid4().hex[:8]}"
    proc = _start(
        settings.home,
        "embed", "-m", "timm:test_efficientnet_gn", "-r", unique_release,
        "--input-size", "32", "--batch-size", "1024", "--workers", "2",
        appname=marker,
    )  # fmt: skip
    try:

        def workers():
            """the embed's two reader connections (those not holding its advisory lock)"""
            rows = conn.execute(
                "SELECT a.pid FROM pg_stat_activity a WHERE a.application_name = %s "
                "AND NOT EXISTS (SELECT 1 FROM pg_locks l "
                "WHERE l.pid = a.pid AND l.locktype = 'advisory')",
                (marker,),
            ).fetchall()
            return proc.poll() is not None or (len(rows) == 2 and [r[0] for r in rows])

        pids = _poll(workers, timeout=280)
        assert proc.poll() is None, proc.communicate()
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        line = _assert_lost_connection(proc)
        # the worker hears of it either from the server's notice or from the closed socket
        assert (
            "terminating connection due to administrator command" in line
            or "server closed the connection unexpectedly" in line
        ), line
        assert "Original Traceback" not in line
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_unreachable_server_is_exit_3(monkeypatch, capsys):
    monkeypatch.setenv("GALDB_DATABASE_URL", "postgresql://nobody@/galdb?host=/nonexistent")
    assert main(["db", "status"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("args", [["cone", "1", "2", "1deg"], ["sql", "SELECT 1"]])
def test_unstartable_embedded_server_is_exit_3(tmp_path, monkeypatch, capsys, args):
    home = tmp_path / "home"
    (home / "pgdata").mkdir(parents=True)
    (home / "pgdata" / "PG_VERSION").write_text("not a version\n")
    monkeypatch.delenv("GALDB_DATABASE_URL", raising=False)
    assert main(["--data-dir", str(home), *args]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_statement_timeout_is_not_a_lost_connection(settings, monkeypatch, capsys):
    monkeypatch.setenv("GALDB_STATEMENT_TIMEOUT_MS", "200")
    assert main(["sql", "SELECT pg_sleep(5)"]) == 1
    err = capsys.readouterr().err
    assert "lost the connection" not in err and "timeout" in err
