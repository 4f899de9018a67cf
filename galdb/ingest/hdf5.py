"""HDF5 image arrays: Stein et al.'s ssl-legacysurvey and Galaxy10 DECaLS layouts.

Both keep all cutouts in one dataset ``images`` plus 1-D catalog datasets of the same length:

* ssl-legacysurvey: ``images`` (N, 3, H, W) float flux in g, r, z; ``ra``, ``dec``, …
* Galaxy10 DECaLS: ``images`` (N, H, W, 3) uint8 colour; ``ans`` (class), ``ra``, ``dec``,
  ``redshift``, …

Pixels are referenced as (file, ``images``, index) and never copied. The id is the dataset
named by ``id_column`` when given, else ``<file stem>:<index>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from galdb.errors import GaldbError
from galdb.ingest.catalog import GUESSES
from galdb.ingest.limits import MAX_PIXELS
from galdb.ingest.records import BadInput, Candidate, Code, Galaxy, Pixels, check_coordinates

SUFFIXES = {".h5", ".hdf5", ".hdf"}
IMAGES = "images"
CHUNK = 256


def image_layout(shape: tuple[int, ...]) -> str | None:
    """'single', 'channels_first' or 'channels_last' for an (N, …) image array; else None.

    Bands are few and fewer than pixels on a side; that tells the two 4-D layouts apart.
    """
    if len(shape) == 3:
        return "single"
    if len(shape) == 4 and shape[1] <= 16 and shape[1] < shape[2]:
        return "channels_first"
    if len(shape) == 4 and shape[3] <= 16 and shape[3] < shape[2]:
        return "channels_last"
    return None


def _layout(images: h5py.Dataset, path: Path) -> tuple[str, tuple[int, int, int]]:
    """The layout and the per-galaxy (bands, height, width), within the pixel limit."""
    shape = images.shape
    layout = image_layout(shape)
    if layout == "single":
        cube = (1, shape[1], shape[2])
    elif layout == "channels_first":
        cube = (shape[1], shape[2], shape[3])
    elif layout == "channels_last":
        cube = (shape[3], shape[1], shape[2])
    else:
        raise GaldbError(
            f"{path}: dataset {IMAGES!r} has shape {shape}; expected (N, bands, H, W), "
            "(N, H, W, bands) or (N, H, W)"
        )
    if cube[1] * cube[2] > MAX_PIXELS:
        raise GaldbError(
            f"{path}: images in {IMAGES!r} are {cube[2]}x{cube[1]} pixels; "
            f"the limit is {MAX_PIXELS:,} pixels per band"
        )
    return layout, cube


def _default_bands(layout: str, dtype: np.dtype, n: int) -> str | None:
    if layout == "channels_first" and n == 3 and dtype.kind == "f":
        return "g,r,z"  # the ssl-legacysurvey convention
    if layout == "channels_last" and n == 3 and dtype == np.uint8:
        return "r,g,b"  # a rendered colour image (Galaxy10 DECaLS)
    return None


def _catalog_names(h5: h5py.File, n: int) -> list[str]:
    return sorted(
        name
        for name, obj in h5.items()
        if name != IMAGES and isinstance(obj, h5py.Dataset) and obj.shape == (n,)
    )


def _guess(names: list[str], role: str) -> str | None:
    lower = {n.lower(): n for n in names}
    return next((lower[g] for g in GUESSES[role] if g in lower), None)


def _plain(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode(errors="replace").strip()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def hdf5_candidates(
    path: Path,
    *,
    id_column: str | None = None,
    pixel_scale: float | None = None,
    bands: str | None = None,
) -> Iterator[Candidate]:
    """One candidate per image, read ``CHUNK`` images at a time (memory stays bounded)."""
    with h5py.File(path, "r") as h5:
        if IMAGES not in h5:
            raise GaldbError(f"{path}: no dataset {IMAGES!r} (found: {', '.join(h5.keys())})")
        images = h5[IMAGES]
        layout, shape = _layout(images, path)
        n = images.shape[0]
        names = _catalog_names(h5, n)
        if id_column is not None and id_column not in names:
            raise GaldbError(f"{path}: no 1-D dataset {id_column!r} of length {n} for the id")
        ra_name, dec_name = _guess(names, "ra"), _guess(names, "dec")
        band_names = (
            bands or h5.attrs.get("bands") or _default_bands(layout, images.dtype, shape[0])
        )
        scale = pixel_scale if pixel_scale is not None else h5.attrs.get("pixel_scale")
        for start in range(0, n, CHUNK):
            stop = min(start + CHUNK, n)
            block = images[start:stop]
            columns = {name: h5[name][start:stop] for name in names}
            for offset in range(stop - start):
                index = start + offset
                values = {name: _plain(columns[name][offset]) for name in names}
                source_id = str(values[id_column]) if id_column else f"{path.stem}:{index}"
                pixels = Pixels(
                    uri=str(path),
                    member=IMAGES,
                    index=index,
                    bands=band_names,
                    pixel_scale=float(scale) if scale is not None else None,
                    shape=shape,
                )
                yield Candidate(
                    source_id=source_id,
                    source=str(path),
                    item=f"index {index}",
                    load=lambda v=values, p=pixels, img=block[offset], s=source_id: _galaxy(
                        s, v, p, img, ra_name, dec_name, id_column
                    ),
                )


def _galaxy(
    source_id: str,
    values: dict,
    pixels: Pixels,
    image: np.ndarray,
    ra_name: str | None,
    dec_name: str | None,
    id_column: str | None,
) -> Galaxy:
    if image.dtype.kind == "f" and not np.isfinite(image).any():
        raise BadInput(Code.ALL_NAN, "every pixel is NaN or infinite")
    coords = None
    if ra_name and dec_name:
        coords = check_coordinates(values[ra_name], values[dec_name], required=True)
    ra, dec = coords if coords else (None, None)
    props = {k: v for k, v in values.items() if k not in {ra_name, dec_name, id_column}}
    return Galaxy(source_id=source_id, ra=ra, dec=dec, pixels=pixels, props=props)
