"""Cutout files of any supported format, and directories of them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from galdb.ingest import fits, image
from galdb.ingest.records import (
    BadInput,
    Candidate,
    Code,
    Galaxy,
    Pixels,
    Rejected,
    check_coordinates,
    is_storable,
    storable,
)
from galdb.ingest.walk import WalkError, walk_files

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fits.fz", ".fz")


def is_fits(path: Path) -> bool:
    return path.name.lower().endswith(FITS_SUFFIXES)


def inspect_cutout(path: Path) -> Pixels:
    """Inspect one cutout file, choosing the reader by its name.

    Raises
    ------
    BadInput
        The file is missing, cannot be reached (``unreadable_path``), or its reader rejects it.
    """
    try:
        os.stat(path)
    except FileNotFoundError as exc:
        raise BadInput(Code.FILE_MISSING, "file does not exist") from exc
    except (OSError, ValueError) as exc:  # ELOOP, EACCES, ENAMETOOLONG, a NUL in the name
        raise BadInput(Code.UNREADABLE_PATH, f"cannot reach the file ({exc})") from exc
    if is_fits(path):
        return fits.inspect_fits(path)
    if path.suffix.lower() in image.SUFFIXES:
        return image.inspect_image(path)
    raise BadInput(
        Code.NOT_AN_IMAGE,
        f"unsupported file type {path.suffix or '(no suffix)'!r}: expected FITS, JPEG or PNG",
    )


def source_id_for(path: Path, root: Path) -> str:
    """The id of a cutout found by a directory scan: its path below ``root`` without suffix."""
    relative = path.relative_to(root).as_posix()
    for suffix in FITS_SUFFIXES + tuple(image.SUFFIXES):
        if relative.lower().endswith(suffix):
            return relative[: -len(suffix)]
    return relative.rsplit(".", 1)[0] if "." in path.name else relative


def directory_candidates(root: Path) -> Iterator[Candidate | Rejected]:
    """One candidate per file found by :func:`~galdb.ingest.walk.walk_files` below ``root``.

    The centre comes from the file (WCS or name) when it has one. A path the walk could not
    read becomes one ``unreadable_path`` rejection, a file whose name is not UTF-8 (the
    database stores text) one ``encoding_error``.
    """
    for path in walk_files(root):
        if isinstance(path, WalkError):
            where = storable(str(path.path))
            yield Rejected(where, "", Code.UNREADABLE_PATH, _os_reason(path.error))
        elif not is_storable(str(path)):
            reason = "the file name is not valid UTF-8; rename the file"
            yield Rejected(storable(str(path)), "", Code.ENCODING_ERROR, reason)
        else:
            yield file_candidate(path, root)


def file_candidate(path: Path, root: Path) -> Candidate:
    """The candidate of one cutout file; its id is its path below ``root`` without suffix."""
    return Candidate(
        source_id=source_id_for(path, root),
        source=str(path),
        item="",
        load=lambda: _galaxy_from_file(path, root),
    )


def _galaxy_from_file(path: Path, root: Path) -> Galaxy:
    pixels = inspect_cutout(path)
    coords = check_coordinates(pixels.ra, pixels.dec, required=False)
    ra, dec = coords if coords else (None, None)
    return Galaxy(source_id=source_id_for(path, root), ra=ra, dec=dec, pixels=pixels)


def _os_reason(error: OSError) -> str:
    what = error.strerror or str(error)
    return f"cannot read it during the directory walk ({what})"
