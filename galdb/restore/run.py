"""Restore a release's cutouts with a version's network: FITS files plus rows in Postgres.

Each galaxy's restored cutout goes to ``<out>/v<version>/<galaxy_id>.fits`` (same bands and
order as its input, in flux; the input FITS header, WCS included, is kept and ``RESTVER``
names the version), written under a temporary name and renamed, and its path is recorded in
``galdb.restorations``. Galaxies are taken in ``galaxy_id`` order, a page at a time, and each
page's rows are committed with it, so an interrupted run resumes where it stopped (galaxies
that already have a row for the version are skipped). At the end the version becomes the
current one unless told otherwise.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from galdb.errors import GaldbError
from galdb.files import write_fits
from galdb.ingest.cutouts import is_fits
from galdb.ingest.runs import release_id_of
from galdb.lvm.pixels import PixelRef, pixel_columns, read_pixels
from galdb.progress import NoProgress, Progress
from galdb.restore.network import RestorationNet, restore
from galdb.restore.versions import get_version, load_network, make_current

PAGE = 256


@dataclass(frozen=True)
class RunSummary:
    version_id: int
    restored: int
    already: int
    without_pixels: int
    seconds: float
    current: bool


def pick_version(conn: psycopg.Connection, version_id: int | None) -> int:
    """The version asked for; else the current one; else the newest."""
    if version_id is not None:
        return get_version(conn, version_id).version_id
    row = conn.execute(
        "SELECT version_id FROM galdb.restoration_versions "
        "ORDER BY is_current DESC, version_id DESC LIMIT 1"
    ).fetchone()
    if row is None:
        raise GaldbError("no restoration version yet: train one with galdb restore train")
    return row[0]


def run_restoration(
    conn: psycopg.Connection,
    release: str,
    out_dir: Path,
    *,
    version_id: int | None = None,
    switch: bool = True,
    batch_size: int = 64,
    progress: Progress | None = None,
) -> RunSummary:
    """Restore every galaxy of ``release`` with pixels; see the module docstring.

    Commits as it goes (after each page of :data:`PAGE` galaxies, and the switch).

    Raises
    ------
    GaldbError
        Unknown release or version, or a cutout that is not a flux image with bands the
        network knows (naming its file).
    """
    progress = progress or NoProgress()
    release_id = release_id_of(conn, release)
    version_id = pick_version(conn, version_id)
    net = load_network(conn, version_id)
    folder = Path(out_dir).resolve() / f"v{version_id}"
    folder.mkdir(parents=True, exist_ok=True)
    total, done, without = conn.execute(
        "SELECT count(*) FILTER (WHERE pixel_uri IS NOT NULL), count(r.galaxy_id), "
        "count(*) FILTER (WHERE pixel_uri IS NULL) FROM galdb.galaxies g "
        "LEFT JOIN galdb.restorations r ON r.galaxy_id = g.galaxy_id AND r.version_id = %s "
        "WHERE g.release_id = %s",
        (version_id, release_id),
    ).fetchone()
    conn.commit()
    progress.start(total - done, f"restore {release} v{version_id}")
    started, restored, after = time.perf_counter(), 0, -1
    while True:
        rows = conn.execute(
            f"SELECT g.galaxy_id, {pixel_columns('g')} FROM galdb.galaxies g "
            "WHERE g.release_id = %s AND g.galaxy_id > %s AND g.pixel_uri IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM galdb.restorations r "
            "WHERE r.version_id = %s AND r.galaxy_id = g.galaxy_id) "
            "ORDER BY g.galaxy_id LIMIT %s",
            (release_id, after, version_id, PAGE),
        ).fetchall()
        if not rows:
            break
        after = rows[-1][0]
        refs = [(r[0], PixelRef.from_row(r[1:])) for r in rows]
        paths = _restore_page(net, refs, folder, version_id, batch_size)
        with conn.cursor().copy(
            "COPY galdb.restorations (version_id, galaxy_id, path) FROM STDIN"
        ) as copy:
            for galaxy_id, path in paths:
                copy.write_row((version_id, galaxy_id, str(path)))
        conn.commit()
        restored += len(paths)
        progress.advance(len(paths))
    if switch:
        make_current(conn, version_id)
        conn.commit()
    return RunSummary(version_id, restored, done, without, time.perf_counter() - started, switch)


def _restore_page(
    net: RestorationNet,
    refs: list[tuple[int, PixelRef]],
    folder: Path,
    version_id: int,
    batch_size: int,
) -> list[tuple[int, Path]]:
    """Restore and write one page of galaxies (grouped by image shape and bands)."""
    groups: dict[tuple, list[tuple[int, PixelRef, np.ndarray]]] = {}
    for galaxy_id, ref in refs:
        pixels = read_pixels(ref)
        if pixels.dtype == np.uint8 or not ref.bands:
            raise GaldbError(
                f"{ref.uri}: galaxy {galaxy_id} is not a flux image with named bands "
                "(restoration works on FITS/float HDF5 cutouts in nanomaggies)"
            )
        groups.setdefault((pixels.shape, ref.bands), []).append((galaxy_id, ref, pixels))
    written = []
    for (_, bands), items in groups.items():
        images = np.stack([pixels for _, _, pixels in items])
        try:
            outputs = restore(net, images, list(bands), batch_size)
        except GaldbError as exc:
            raise GaldbError(f"{items[0][1].uri}: {exc}") from exc
        for (galaxy_id, ref, _), image in zip(items, outputs, strict=True):
            path = folder / f"{galaxy_id}.fits"
            _write(path, image, _header(ref), galaxy_id, version_id)
            written.append((galaxy_id, path))
    return sorted(written)


def _header(ref: PixelRef) -> fits.Header:
    """The input's FITS header (WCS and survey keywords) when it is a FITS file."""
    if ref.index is not None or not is_fits(Path(ref.uri)):
        return fits.Header()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        return fits.getheader(ref.uri, int(ref.member) if ref.member not in (None, "") else 0)


def _write(path: Path, image: np.ndarray, header: fits.Header, galaxy_id: int, version: int):
    header["GALAXYID"] = (galaxy_id, "galdb galaxy_id")
    header["RESTVER"] = (version, "galdb restoration version")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        write_fits(path, image.astype(np.float32), header)
