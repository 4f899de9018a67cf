"""Where a galaxy's pixels are (:class:`PixelRef`), and the one function that reads them.

A :class:`PixelRef` is the file (``uri``), the HDU or dataset in it (``member``), the row of
an HDF5 array (``index``) and the band names, as ``galdb.galaxies`` stores them
(``pixel_uri``, ``pixel_member``, ``pixel_index``, ``bands`` as ``g,r,z``); select them with
:func:`pixel_columns` and build the reference with :meth:`PixelRef.from_row`, so the
columns and the parsing of ``bands`` live here only.

:func:`read_pixels` returns (bands, H, W): float32 flux for FITS and float HDF5, uint8 for
JPEG/PNG and uint8 HDF5 (display images). HDF5 files stay open per process (a release may be
one 1 TB file).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import h5py
import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from PIL import Image

from galdb.errors import GaldbError
from galdb.ingest.cutouts import is_fits
from galdb.ingest.hdf5 import image_layout
from galdb.lvm.fits_image import read_image

COLUMNS = ("pixel_uri", "pixel_member", "pixel_index", "bands")


def pixel_columns(alias: str | None = None) -> str:
    """The columns of ``galdb.galaxies`` that :meth:`PixelRef.from_row` reads, in its order.

    >>> pixel_columns("g")
    'g.pixel_uri, g.pixel_member, g.pixel_index, g.bands'
    """
    return ", ".join(f"{alias}.{c}" if alias else c for c in COLUMNS)


def parse_bands(bands: str | None) -> tuple[str, ...]:
    """``'g,r,z'`` as ``('g', 'r', 'z')``; no bands recorded is an empty tuple.

    The position of a name is the plane it names, so empty names are kept in place.
    """
    return tuple(bands.split(",")) if bands else ()


@dataclass(frozen=True)
class PixelRef:
    """Where one galaxy's pixels are: file, member (HDU or dataset), array row, bands."""

    uri: str
    member: str | None = None
    index: int | None = None
    bands: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row) -> PixelRef | None:
        """From the :func:`pixel_columns` of a row; None when the galaxy has no pixels."""
        uri, member, index, bands = row
        return None if uri is None else cls(uri, member, index, parse_bands(bands))


def pixel_refs(conn, galaxy_ids, what: str = "this") -> list[PixelRef]:
    """The :class:`PixelRef` of each of ``galaxy_ids`` (sorted ascending), in that order;
    a galaxy without pixels is an error (``what`` says what needed them)."""
    rows = conn.execute(
        f"SELECT galaxy_id, {pixel_columns()} FROM galdb.galaxies "
        "WHERE galaxy_id = ANY(%s) ORDER BY galaxy_id",
        (list(map(int, galaxy_ids)),),
    ).fetchall()
    refs = [PixelRef.from_row(r[1:]) for r in rows]
    if [r[0] for r in rows] != list(map(int, galaxy_ids)) or None in refs:
        raise GaldbError(f"{what} needs the pixels of every labelled galaxy")
    return refs


@lru_cache(maxsize=8)
def _h5(uri: str) -> h5py.File:
    return h5py.File(uri, "r")


def read_pixels(ref: PixelRef) -> np.ndarray:
    """The pixels of one galaxy as (bands, H, W).

    Raises
    ------
    GaldbError
        The file cannot be read, naming it.
    """
    uri, member, index = ref.uri, ref.member, ref.index
    try:
        if index is not None:
            return _from_hdf5(uri, member or "images", index)
        if is_fits(Path(uri)):
            return _from_fits(uri, int(member) if member not in (None, "") else 0)
        with Image.open(uri) as img:
            array = np.asarray(img.convert("L" if img.mode in ("L", "I", "I;16", "F") else "RGB"))
        return array[np.newaxis] if array.ndim == 2 else np.moveaxis(array, -1, 0)
    except (OSError, ValueError, KeyError) as exc:
        raise GaldbError(f"cannot read pixels of {uri} ({exc})") from exc


def _from_fits(uri: str, ext: int) -> np.ndarray:
    data = read_image(uri, ext)  # a plain image, without astropy's header parsing
    if data is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)  # survey headers bend the standard
            with open(uri, "rb") as fh, fits.open(fh, memmap=False) as hdul:
                data = np.asarray(hdul[ext].data, dtype=np.float32)
    return data[np.newaxis] if data.ndim == 2 else data


def _from_hdf5(uri: str, member: str, index: int) -> np.ndarray:
    dataset = _h5(uri)[member]
    layout = image_layout(dataset.shape)
    image = np.asarray(dataset[index])
    if layout == "single":
        image = image[np.newaxis]
    elif layout == "channels_last":
        image = np.moveaxis(image, -1, 0)
    return image if image.dtype == np.uint8 else image.astype(np.float32)
