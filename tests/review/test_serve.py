"""galdb review serve: the page is served and a browser's websocket starts a review session."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request

import aiohttp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_served_page_starts_a_session(conn, settings, make_task):
    r = make_task()
    conn.commit()
    port = _free_port()
    env = {**os.environ, "GALDB_HOME": str(settings.home)}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "galdb",
            "review",
            "serve",
            "--task",
            r.task.name,
            "--reviewer",
            "web",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        page = None
        for _ in range(100):
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
                break
            except OSError:
                time.sleep(0.2)
        assert page is not None and b"galdb review" in page and b"/ws" in page

        async def browse() -> int:
            async with (
                aiohttp.ClientSession() as http,
                http.ws_connect(f"http://127.0.0.1:{port}/ws?width=120&height=40") as ws,
            ):
                deadline = time.time() + 60
                while time.time() < deadline:
                    try:
                        await asyncio.wait_for(ws.receive(), timeout=0.5)
                    except TimeoutError:
                        pass
                    conn.rollback()
                    leased = conn.execute(
                        "SELECT count(*) FROM galdb.review_leases WHERE task_id = %s "
                        "AND reviewer = 'web'",
                        (r.task.task_id,),
                    ).fetchone()[0]
                    if leased:
                        return leased
                return 0

        assert asyncio.run(browse()) > 0  # the app ran and claimed the first galaxies
    finally:
        server.terminate()
        server.wait(20)
