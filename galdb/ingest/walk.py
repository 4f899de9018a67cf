"""The walk of a cutout directory: lazy, loop-safe, and never stopped by one bad entry.

A survey directory may hold millions of files, so the walk is a generator over
:func:`os.scandir`: it holds one open directory and the list of subdirectories still to visit,
never the list of files. Rules:

* Hidden entries (names starting with ``.``) are skipped.
* Symbolic links to directories are followed, each directory at most once: the walk tracks
  the (``st_dev``, ``st_ino``) of every directory it entered, so a link back to an ancestor (a
  cycle) or a second link to the same directory adds nothing. Linked directories are entered
  after the whole real tree, so a directory inside ``root`` is always listed under its own
  path, never under a link's. Links to files are listed like files; a broken one then gives
  ``file_missing`` when it is read.
* Every :class:`OSError` (a directory that cannot be read or vanished, a link that loops on
  itself, ``ELOOP``) is yielded as a :class:`WalkError` for that path and the walk goes on.
* Order: the files of a directory in the order the filesystem gives them, then its
  subdirectories by name (depth first), then the linked directories. Nothing is sorted as a
  whole, so two runs over an unchanged directory see the same order on the same filesystem,
  and :func:`summarize`'s checksum does not depend on the order at all.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class WalkError:
    """A path the walk could not list or inspect, and why."""

    path: Path
    error: OSError


def walk_files(root: Path) -> Iterator[Path | WalkError]:
    """Every non-hidden, non-directory entry below ``root``, or a :class:`WalkError`."""
    visited: set[tuple[int, int]] = set()
    pending, linked = [os.fspath(root)], []
    while pending or linked:
        directory = pending.pop() if pending else linked.pop()
        subdirectories, links = [], []
        try:
            info = os.stat(directory)
            if (info.st_dev, info.st_ino) in visited:
                continue
            visited.add((info.st_dev, info.st_ino))
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    try:
                        is_directory = entry.is_dir()  # follows links; ELOOP raises
                    except OSError as exc:
                        yield WalkError(Path(entry.path), exc)
                        continue
                    if is_directory:
                        (links if entry.is_symlink() else subdirectories).append(entry.path)
                    else:
                        yield Path(entry.path)
        except OSError as exc:
            yield WalkError(Path(directory), exc)
        pending.extend(sorted(subdirectories, reverse=True))  # popped in name order
        linked.extend(sorted(links, reverse=True))


@dataclass(frozen=True, slots=True)
class Listing:
    """What a walk found: a checksum of names and sizes, how many entries and bytes."""

    checksum: str
    entries: int
    size_bytes: int


def summarize(root: Path) -> Listing:
    """Walk ``root`` once for its :class:`Listing`; memory does not grow with the file count.

    The checksum covers each entry's path below ``root`` and size (or its error), combined so
    that the order of the walk does not matter: a sum of per-entry SHA-256 digests.
    """
    total, entries, size = 0, 0, 0
    for found in walk_files(root):
        if isinstance(found, WalkError):
            line = f"!{_relative(found.path, root)}\0{found.error.errno}"
        else:
            try:
                nbytes = os.stat(found).st_size
            except OSError as exc:
                line = f"!{_relative(found, root)}\0{exc.errno}"
            else:
                line = f"{_relative(found, root)}\0{nbytes}"
                size += nbytes
        digest = hashlib.sha256(line.encode(errors="surrogateescape")).digest()
        total = (total + int.from_bytes(digest)) % (1 << 256)
        entries += 1
    return Listing(f"{total:064x}", entries, size)


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path != root else "."
