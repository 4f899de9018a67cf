"""The directory walk survives loops, unreadable directories and files that vanish."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from galdb.ingest import ingest
from galdb.ingest.loader import Loader
from galdb.ingest.runs import ensure_release, ingest_run
from galdb.ingest.sources import open_source
from galdb.ingest.walk import WalkError, walk_files


def _png(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(path)


def test_symlink_cycles_are_followed_once(tmp_path):
    _png(tmp_path / "a" / "one.png")
    _png(tmp_path / "b" / "two.png")
    (tmp_path / "a" / "to_b").symlink_to(tmp_path / "b", target_is_directory=True)
    (tmp_path / "b" / "to_a").symlink_to(tmp_path / "a", target_is_directory=True)
    (tmp_path / "a" / "self").symlink_to(tmp_path / "a" / "self")  # ELOOP
    found = list(walk_files(tmp_path))
    files = [p.relative_to(tmp_path).as_posix() for p in found if not isinstance(p, WalkError)]
    files.sort()
    assert files == ["a/one.png", "b/two.png"]
    errors = [e for e in found if isinstance(e, WalkError)]
    assert [e.path.name for e in errors] == ["self"]
    assert "symbolic links" in str(errors[0].error)


def test_directory_symlinks_outside_the_root_are_followed(tmp_path):
    _png(tmp_path / "elsewhere" / "far.png")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert [p.name for p in walk_files(tmp_path / "root")] == ["far.png"]


def test_deep_nesting_does_not_recurse(tmp_path):
    deep = tmp_path
    for _ in range(1100):  # deeper than Python's recursion limit
        deep = deep / "d"
        deep.mkdir()
    (deep / "x.png").write_bytes(b"")
    try:
        assert [p.name for p in walk_files(tmp_path)] == ["x.png"]
    finally:  # remove it bottom up: shutil.rmtree recurses (Python 3.11) and pytest would fail
        (deep / "x.png").unlink()
        while deep != tmp_path:
            deep.rmdir()
            deep = deep.parent


def test_vanished_directory_is_a_walk_error(tmp_path):
    for name in ("d1", "d2", "d3"):
        _png(tmp_path / name / "f.png")
    walk = walk_files(tmp_path)
    first = next(walk)
    for name in ("d1", "d2", "d3"):
        if name != first.parent.name:
            shutil.rmtree(tmp_path / name)
    rest = list(walk)
    assert len(rest) == 2 and all(isinstance(e, WalkError) for e in rest)
    assert all(isinstance(e.error, FileNotFoundError) for e in rest)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every directory, whatever its mode")
def test_unreadable_directory_is_a_walk_error(tmp_path):
    _png(tmp_path / "ok" / "f.png")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked").chmod(0)
    try:
        found = list(walk_files(tmp_path))
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert [p.name for p in found if not isinstance(p, WalkError)] == ["f.png"]
    assert [e.path.name for e in found if isinstance(e, WalkError)] == ["locked"]


def test_files_vanishing_during_ingest_are_quarantined(conn, tmp_path, unique_release):
    for i in range(4):
        _png(tmp_path / f"sub{i}" / f"g{i}.png")
    _png(tmp_path / "top.png")

    def vanishing(candidates):
        # Files of a directory come before its subdirectories: sub1 goes before it is read,
        # g2.png after the walk found it and before the loader opens it.
        for candidate in candidates:
            yield candidate
            if candidate.source.endswith("top.png"):
                shutil.rmtree(tmp_path / "sub1")
            if candidate.source.endswith("g2.png"):
                (tmp_path / "sub2" / "g2.png").unlink()

    source = open_source(tmp_path)
    release_id = ensure_release(conn, unique_release, "test")
    with ingest_run(conn, release_id, str(tmp_path), "cutouts", {}) as run_id:
        loader = Loader(conn, release_id, run_id)
        loader.feed(vanishing(source.candidates()))
    problems = sorted((Path(p.source).name, str(p.code)) for p in loader.counts.problems)
    assert problems == [("g2.png", "file_missing"), ("sub1", "unreadable_path")]
    assert loader.counts.inserted == 3
    assert ingest(conn, tmp_path, unique_release).present == 3
