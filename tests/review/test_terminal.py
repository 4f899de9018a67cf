"""galdb review in a real terminal (tmux), driven as a person would: keys in, screen out."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def _pane(name: str) -> str:
    return subprocess.run(
        ["tmux", "capture-pane", "-p", "-t", name], capture_output=True, text=True, check=True
    ).stdout


def _wait_for(name: str, text: str, timeout: float = 60) -> str:
    deadline = time.time() + timeout
    screen = ""
    while time.time() < deadline:
        screen = _pane(name)
        if text in screen:
            return screen
        time.sleep(0.3)
    raise AssertionError(f"{text!r} never appeared; the screen was:\n{screen}")


def test_review_in_tmux(conn, settings, make_task):
    r = make_task()
    conn.commit()
    name = f"galdb-{uuid.uuid4().hex[:8]}"
    command = shlex.join(
        [sys.executable, "-m", "galdb", "review", "--task", r.task.name, "--reviewer", "tty"]
    )
    env = f"GALDB_HOME={shlex.quote(str(settings.home))} TERM=xterm-256color"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", name, "-x", "160", "-y", "50", f"{env} {command}"],
        check=True,
        env={**os.environ, "TMUX": ""},
    )
    try:
        screen = _wait_for(name, "head version")
        first = conn.execute(
            "SELECT g.source_id FROM galdb.review_leases l JOIN galdb.galaxies g "
            "USING (galaxy_id) WHERE l.task_id = %s AND l.reviewer = 'tty' ORDER BY l.leased_at "
            "LIMIT 1",
            (r.task.task_id,),
        ).fetchone()[0]
        conn.commit()
        assert first in screen and "▶" in screen  # the galaxy id and the predicted class
        subprocess.run(["tmux", "send-keys", "-t", name, "3"], check=True)  # merger
        deadline = time.time() + 30
        while time.time() < deadline:
            decided = conn.execute(
                "SELECT answer_class FROM galdb.review_decisions WHERE task_id = %s "
                "AND reviewer = 'tty'",
                (r.task.task_id,),
            ).fetchall()
            conn.commit()
            if decided:
                break
            time.sleep(0.2)
        assert decided == [("merger",)]
        _wait_for(name, "decisions 1")
        subprocess.run(["tmux", "send-keys", "-t", name, "q"], check=True)
        deadline = time.time() + 20
        while (
            time.time() < deadline
            and subprocess.run(["tmux", "has-session", "-t", name], capture_output=True).returncode
            == 0
        ):
            time.sleep(0.2)
        leases = conn.execute(
            "SELECT count(*) FROM galdb.review_leases WHERE task_id = %s AND reviewer = 'tty'",
            (r.task.task_id,),
        ).fetchone()[0]
        assert leases == 0
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
