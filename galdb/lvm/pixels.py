"""Read a galaxy's pixels from where the survey keeps them (FITS, image file, HDF5 array).

Returns (bands, H, W): float32 flux for FITS and float HDF5, uint8 for JPEG/PNG and uint8
HDF5 (display images). HDF5 files stay open per process (a release may be one 1 TB file).
"""

from __future__ import annotations

import warnings
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


@lru_cache(maxsize=8)
def _h5(uri: str) -> h5py.File:
    return h5py.File(uri, "r")


def read_pixels(uri: str, member: str | None = None, index: int | None = None) -> np.ndarray:
    """The pixels of one galaxy as (bands, H, W)."""
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
