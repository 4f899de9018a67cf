"""Cutout files of any supported format, and directories of them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from galdb.ingest import fits, image
from galdb.ingest.records import BadInput, Candidate, Code, Galaxy, Pixels, check_coordinates

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fits.fz", ".fz")


def is_fits(path: Path) -> bool:
    return path.name.lower().endswith(FITS_SUFFIXES)


def inspect_cutout(path: Path) -> Pixels:
    """Inspect one cutout file, choosing the reader by its name."""
    if not path.exists():
        raise BadInput(Code.FILE_MISSING, "file does not exist")
    if is_fits(path):
        return fits.inspect_fits(path)
    if path.suffix.lower() in image.SUFFIXES:
        return image.inspect_image(path)
    raise BadInput(
        Code.NOT_AN_IMAGE,
        f"unsupported file type {path.suffix or '(no suffix)'!r}: expected FITS, JPEG or PNG",
    )


def list_files(root: Path) -> list[Path]:
    """Every regular, non-hidden file below ``root``, sorted (the ingest order)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath) / f for f in filenames if not f.startswith("."))
    return sorted(found)


def source_id_for(path: Path, root: Path) -> str:
    """The id of a cutout found by a directory scan: its path below ``root`` without suffix."""
    relative = path.relative_to(root).as_posix()
    for suffix in FITS_SUFFIXES + tuple(image.SUFFIXES):
        if relative.lower().endswith(suffix):
            return relative[: -len(suffix)]
    return relative.rsplit(".", 1)[0] if "." in path.name else relative


def directory_candidates(root: Path, files: list[Path]) -> Iterator[Candidate]:
    """One candidate per file; the centre comes from the file (WCS or name) when it has one."""
    for path in files:
        yield Candidate(
            source_id=source_id_for(path, root),
            source=str(path),
            item="",
            load=lambda path=path, root=root: _galaxy_from_file(path, root),
        )


def _galaxy_from_file(path: Path, root: Path) -> Galaxy:
    pixels = inspect_cutout(path)
    coords = check_coordinates(pixels.ra, pixels.dec, required=False)
    ra, dec = coords if coords else (None, None)
    return Galaxy(source_id=source_id_for(path, root), ra=ra, dec=dec, pixels=pixels)
