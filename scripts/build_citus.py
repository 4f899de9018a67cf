"""Build Citus for the embedded PostgreSQL once, into a cache, and install it into the server.

    python scripts/build_citus.py            # build if not cached, then install; prints the cache
    python scripts/build_citus.py --check    # exit 0 if built and installed, 1 otherwise

Citus (AGPL-3.0) is a separate server extension: galdb never links it, it only talks SQL to a
server that has it. The source is the vendored tarball (``$GALDB_CITUS_TARBALL``, default
``../shared/vendor/citus-14.0.1.tar.gz`` beside the repository). It is configured with the
embedded server's own ``pg_config`` and a compiler wrapper that drops
``-Wmissing-variable-declarations`` (recorded in the server's CFLAGS, unknown to gcc 12), built
with ``make -j``, and installed with ``DESTDIR`` into the cache (``$GALDB_CITUS_CACHE``, default
``~/.cache/galdb/citus-14.0.1-pg18``). Installing copies that staged tree into the server's
``lib/`` and ``share/`` folders; it is cheap, so a fresh virtual environment with a cached build
only copies. A build that stopped half-way is redone (the marker file is written last).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

VERSION = "14.0.1"
REPO = Path(__file__).resolve().parent.parent
DROPPED_FLAG = "-Wmissing-variable-declarations"


def tarball() -> Path:
    default = REPO.parent / "shared" / "vendor" / f"citus-{VERSION}.tar.gz"
    return Path(os.environ.get("GALDB_CITUS_TARBALL", default))


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "galdb" / f"citus-{VERSION}-pg18"
    return Path(os.environ.get("GALDB_CITUS_CACHE", default))


def pg_config() -> Path:
    from galdb.db import server

    return server._bin_path() / "pg_config"


def _config(option: str) -> Path:
    out = subprocess.run([str(pg_config()), option], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def _prefix() -> Path:
    """The embedded server's installation folder (``pginstall18``)."""
    return _config("--bindir").parent


def _staged_root(cache: Path) -> Path:
    """The built files, laid out as under the server's installation folder (``lib/``,
    ``share/``, ``include/``): the same for every virtual environment of this server."""
    return cache / "files"


def _marker(cache: Path) -> Path:
    return cache / "BUILT"


def _build_id() -> str:
    version = subprocess.run([str(pg_config()), "--version"], capture_output=True, text=True)
    return f"citus {VERSION} for {version.stdout.strip()}\n"


def is_built(cache: Path) -> bool:
    marker = _marker(cache)
    return marker.is_file() and marker.read_text() == _build_id()


def _staged_files(cache: Path) -> list[Path]:
    root = _staged_root(cache)
    return [path.relative_to(root) for path in root.rglob("*") if path.is_file()]


def is_installed(cache: Path) -> bool:
    if not is_built(cache):
        return False
    prefix, root = _prefix(), _staged_root(cache)
    return all(
        (prefix / rel).is_file() and filecmp.cmp(root / rel, prefix / rel, shallow=False)
        for rel in _staged_files(cache)
    )


def build(cache: Path, jobs: int) -> None:
    """Configure, compile and stage Citus in ``cache`` (several minutes on 2 cores)."""
    source = tarball()
    if not source.is_file():
        sys.exit(f"Citus source not found: {source} (set GALDB_CITUS_TARBALL)")
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    with tarfile.open(source) as tar:
        tar.extractall(cache / "src", filter="data")
    (src,) = (cache / "src").iterdir()
    wrapper = cache / "cc"
    wrapper.write_text(
        "#!/bin/sh\n# gcc without a flag it does not know (recorded in the server's CFLAGS)\n"
        'for a do shift; [ "$a" = "' + DROPPED_FLAG + '" ] || set -- "$@" "$a"; done\n'
        'exec gcc "$@"\n'
    )
    wrapper.chmod(0o755)
    log = cache / "build.log"
    steps = [
        ["./configure", f"PG_CONFIG={pg_config()}", f"CC={wrapper}"]
        + ["--without-libcurl", "--without-lz4", "--without-zstd"],
        ["make", f"-j{jobs}"],
        ["make", "install", f"DESTDIR={cache / 'stage'}"],
    ]
    with open(log, "w") as out:
        for step in steps:
            print(f"citus: {' '.join(step[:2])} … (log: {log})", file=sys.stderr, flush=True)
            if subprocess.run(step, cwd=src, stdout=out, stderr=subprocess.STDOUT).returncode:
                sys.exit(f"Citus build step failed: {' '.join(step)}; see {log}")
    shutil.rmtree(cache / "src")
    stage = cache / "stage"
    (stage / _prefix().relative_to(_prefix().anchor)).rename(_staged_root(cache))
    shutil.rmtree(stage)
    _marker(cache).write_text(_build_id())


def install(cache: Path) -> None:
    """Copy the staged files into the embedded server's installation (readable by all)."""
    prefix, root = _prefix(), _staged_root(cache)
    for rel in _staged_files(cache):
        target = prefix / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        # a new file renamed over the old one: a running server that has the old citus.so
        # mapped would crash if it were overwritten in place
        fresh = target.with_name(f".{target.name}.new")
        shutil.copy2(root / rel, fresh)
        fresh.chmod(0o755 if target.suffix == ".so" else 0o644)
        os.replace(fresh, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only say whether it is installed")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    cache = cache_dir()
    if args.check:
        sys.exit(0 if is_installed(cache) else 1)
    if not is_built(cache):
        build(cache, args.jobs)
    if not is_installed(cache):
        install(cache)
    print(cache)


if __name__ == "__main__":
    main()
