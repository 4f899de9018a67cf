"""Shared pieces of the benchmark scripts: arguments, the embedded server, printing.

Every benchmark starts its own embedded PostgreSQL under ``--home`` (a fresh temporary
directory unless given), prints progress lines with the elapsed time while it runs, and ends
with a small table of figures and ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psutil

from galdb.db import admin
from galdb.db.server import stop
from galdb.db.settings import Settings

_STARTED = time.perf_counter()


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--n", type=int, default=1_000_000, help="catalog rows (default 1,000,000)")
    p.add_argument("--home", type=Path, help="galdb home for the server (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the home directory at the end")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic catalog")
    p.add_argument(
        "--json", type=Path, help="also write the headline figures here (read by run_all.py)"
    )
    return p


def command_line() -> str:
    """The exact command that started this process, for the printed report."""
    return shlex.join(["python", *sys.argv])


def log(message: str) -> None:
    """A progress line with the seconds since start, flushed at once."""
    print(f"[{time.perf_counter() - _STARTED:7.1f}s] {message}", flush=True)


def peak_rss_mib() -> float:
    """Peak resident memory of this Python process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    """CPU count and load average, since other work on the machine skews every figure."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs, load average (1/5/15 min) {load}"


class CpuMeter:
    """CPU seconds used by this Python process and by one server backend between two points."""

    def __init__(self, backend_pid: int):
        self.backend = psutil.Process(backend_pid)
        self.client0, self.server0 = self._client(), self._server()

    def _client(self) -> float:
        t = os.times()
        return t.user + t.system

    def _server(self) -> float:
        t = self.backend.cpu_times()
        return t.user + t.system

    def read(self) -> tuple[float, float]:
        """(client, server) CPU seconds since construction."""
        return self._client() - self.client0, self._server() - self.server0


class ServerCpu:
    """CPU seconds of a whole PostgreSQL server since construction: the postmaster, its live
    processes, and those already ended (their times are added to the postmaster's children
    times when it reaps them)."""

    def __init__(self, pgdata: Path):
        pid = int((Path(pgdata) / "postmaster.pid").read_text().split()[0])
        self.root = psutil.Process(pid)
        self.start = self._now()

    def _now(self) -> float:
        t = self.root.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in self.root.children(recursive=True):
            try:
                c = child.cpu_times()
                total += c.user + c.system
            except psutil.NoSuchProcess:
                pass
        return total

    def read(self) -> float:
        return self._now() - self.start


def process_cpu() -> float:
    """CPU seconds of this process and its ended children (e.g. DataLoader workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@contextmanager
def embedded_server(home: Path | None, keep: bool) -> Iterator[Settings]:
    """Start a migrated embedded server under ``home``; stop it (and clean up) at the end."""
    os.environ.pop("GALDB_DATABASE_URL", None)  # always the embedded server, never an outside one
    fresh = home is None
    home = Path(tempfile.mkdtemp(prefix="galdb-bench-")) if fresh else home
    home.mkdir(parents=True, exist_ok=True)
    settings = Settings.from_env(home)
    log(f"machine: {machine()}")
    log(f"starting the embedded PostgreSQL under {settings.pgdata}")
    try:
        revision = admin.init(settings)
        log(f"database ready (schema revision {revision})")
        yield settings
    finally:
        stopped = stop(settings.pgdata)
        log("server stopped" if stopped else "server was not running")
        if keep:
            log(f"kept {home}")
        elif fresh:
            shutil.rmtree(home, ignore_errors=True)
            log(f"removed {home}")


SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
SKIP_STATUS = 77  # run_all.py reports this exit status as skipped, the last line the reason


def script_module(name: str):
    """A module of ``scripts/`` (``build_citus``, ``citus_cluster``), imported by path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def require_citus() -> None:
    """Exit with :data:`SKIP_STATUS` (and the reason) where Citus is not built."""
    build = script_module("build_citus")
    if not build.is_installed(build.cache_dir()):
        print("Citus is not built here; run python scripts/build_citus.py", flush=True)
        raise SystemExit(SKIP_STATUS)


@contextmanager
def citus_server(root: Path, workers: int, shards: int) -> Iterator[Settings]:
    """A local Citus cluster under ``root`` (a coordinator and ``workers`` workers from the
    embedded server's binaries, each with a share of its memory settings), galdb initialised
    on it with ``shards`` shards (``galdb db init --citus``); stopped at the end."""
    from galdb.db import server

    cluster = script_module("citus_cluster")
    nodes = workers + 1
    tuning = {
        k: f"{int(v[:-2]) // nodes}MB" if v.endswith("MB") else v
        for k, v in server.tuning().items()
    }
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)  # the nodes run as the server user (see scripts/citus_cluster.py)
    url = cluster.start(root / "cluster", workers, settings=tuning)
    try:
        citus = Settings(home=root / "citus", database_url=url)
        admin.init(citus, citus=True, shards=shards)
        log(f"Citus cluster ready: a coordinator and {workers} workers, {shards} shards")
        yield citus
    finally:
        cluster.stop(root / "cluster")


def percentile_ms(seconds: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of durations in seconds, in milliseconds."""
    return float(np.percentile(np.asarray(seconds), q) * 1000.0)


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain fixed-width table (first column left-aligned, the others right-aligned)."""
    cells = [[str(c) for c in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r: list[str]) -> str:
        first = r[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True))])

    print(f"\n{title}")
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for r in cells[1:]:
        print(line(r))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


class Figures:
    """The headline figures of one run, for ``run_all.py`` (written as JSON with ``--json``).

    Each figure has a value and unit, optionally a target (met or not, by ``better``) and a
    reference: the like-for-like value measured in the same run (FAISS, the bare forward pass,
    the ORM baseline ...), so the ratio is what to read on a noisy machine.
    """

    def __init__(self, script: str):
        self.script, self.rows = script, []

    def add(
        self,
        name: str,
        value: float,
        unit: str,
        *,
        target: float | None = None,
        better: str = "higher",
        reference: float | None = None,
        reference_name: str = "",
        note: str = "",
    ) -> None:
        """Record one figure; ``better`` is "higher" or "lower" (for the target check)."""
        if better not in ("higher", "lower"):
            raise ValueError(f"better must be 'higher' or 'lower', not {better!r}")
        met = None
        if target is not None:
            met = value >= target if better == "higher" else value <= target
        ratio = value / reference if reference else None
        self.rows.append(
            dict(
                name=name,
                value=float(value),
                unit=unit,
                target=target,
                better=better,
                met=met,
                reference=reference,
                reference_name=reference_name,
                ratio=ratio,
                note=note,
            )
        )

    def write(self, path: Path | None) -> None:
        """Write the figures (with the command line and the machine) to ``path`` if given."""
        if path is None:
            return
        payload = dict(
            script=self.script, command=command_line(), machine=machine(), figures=self.rows
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2))
        log(f"figures written to {path}")


def verdict(met: bool) -> str:
    """How a target line reads."""
    return "MET" if met else "NOT MET"


class LogProgress:
    """A galdb progress receiver that prints a progress line every ~10 %."""

    def __init__(self, label: str):
        self.label, self.total, self.done, self.next = label, None, 0, 0

    def start(self, total, description: str = "") -> None:
        self.total, self.done = total, 0
        self.next = (total or 0) // 10

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.total and self.done >= self.next:
            log(f"{self.label}: {self.done:,}/{self.total:,}")
            self.next += max(1, self.total // 10)


class RssSampler:
    """Peak resident memory of this process (MiB) while the ``with`` block runs."""

    def __init__(self, every: float = 0.05):
        self.process, self.every = psutil.Process(), every
        self.peak, self._stop = 0.0, threading.Event()

    def _rss(self) -> float:
        return self.process.memory_info().rss / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self.start = self._rss()
        self.peak = self.start
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())
