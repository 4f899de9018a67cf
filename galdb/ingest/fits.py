"""FITS cutouts: single-band images or (band, y, x) cubes, read with astropy."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS

from galdb.ingest.limits import MAX_PIXELS
from galdb.ingest.records import BadInput, Code, Pixels, coordinates_from_name

MAX_BANDS = 16
MIN_SIDE = 8


def inspect_fits(path: Path) -> Pixels:
    """Check a FITS cutout and describe it: shape, bands, pixel scale and centre.

    The first HDU holding a 2-D image or a 3-D cube is used. The centre comes from the WCS,
    else from a file name like ``cutout_<ra>_<dec>.fits`` (the seed paper's layout).

    The image's size is checked from its header before its data is read, so a header
    declaring more than :data:`~galdb.ingest.limits.MAX_PIXELS` pixels per band or more than
    :data:`MAX_BANDS` bands costs no memory.

    Raises
    ------
    BadInput
        Corrupt or truncated file, no image HDU, too large, a wrong shape, or no finite pixel.
    """
    try:
        with warnings.catch_warnings():
            # Truncation is only a warning in astropy; other header complaints are harmless.
            warnings.simplefilter("ignore", AstropyWarning)
            warnings.filterwarnings("error", message=".*truncated", category=AstropyWarning)
            # Our own file handle: astropy leaks its handle when a truncated file raises.
            with path.open("rb") as fh, fits.open(fh, memmap=False) as hdul:
                member, header, data = _first_image(hdul)
    except BadInput:
        raise
    except Exception as exc:  # astropy raises OSError, ValueError, TypeError, warnings…
        raise BadInput(Code.FITS_CORRUPT, f"not a readable FITS file ({exc})") from exc
    cube = _as_cube(data)
    if not np.isfinite(cube).any():
        raise BadInput(Code.ALL_NAN, f"every pixel of HDU {member} is NaN or infinite")
    ra, dec = _centre(header, cube.shape, path.stem)
    return Pixels(
        uri=str(path),
        member=str(member),
        bands=_bands(header, cube.shape[0]),
        pixel_scale=_pixel_scale(header),
        shape=tuple(int(n) for n in cube.shape),
        ra=ra,
        dec=dec,
    )


def _first_image(hdul: fits.HDUList) -> tuple[int, fits.Header, np.ndarray]:
    for index, hdu in enumerate(hdul):
        if isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU):
            if hdu.header.get("NAXIS", 0) >= 2:
                _check_declared_size(hdu.header)
                return index, hdu.header, np.asarray(hdu.data)
    raise BadInput(Code.NO_IMAGE_DATA, "no HDU holds a 2-D image or a 3-D cube")


def _check_declared_size(header: fits.Header) -> None:
    """Refuse an image by what its header declares, before its data is read."""
    axes = [int(header.get(f"NAXIS{i}", 0)) for i in range(1, int(header["NAXIS"]) + 1)]
    width, height, *rest = axes
    if width * height > MAX_PIXELS:
        raise BadInput(
            Code.IMAGE_TOO_LARGE,
            f"header declares {width}x{height} pixels; the limit is {MAX_PIXELS:,} per band",
        )
    planes = int(np.prod(rest)) if rest else 1
    if planes > MAX_BANDS:
        raise BadInput(
            Code.BAD_SHAPE,
            f"header declares {planes} planes of {width}x{height}; need at most {MAX_BANDS} bands",
        )


def _as_cube(data: np.ndarray) -> np.ndarray:
    if data.ndim == 2:
        data = data[np.newaxis]
    if data.ndim != 3:
        raise BadInput(Code.BAD_SHAPE, f"image has shape {data.shape}; need (y, x) or (band, y, x)")
    bands, height, width = data.shape
    if bands > MAX_BANDS or min(height, width) < MIN_SIDE:
        raise BadInput(
            Code.BAD_SHAPE,
            f"image has shape {data.shape}; need at most {MAX_BANDS} bands of "
            f"at least {MIN_SIDE}x{MIN_SIDE} pixels",
        )
    if not np.issubdtype(data.dtype, np.number):
        raise BadInput(Code.BAD_SHAPE, f"pixels have non-numeric type {data.dtype}")
    return data


def _celestial_wcs(header: fits.Header) -> WCS | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs = WCS(header).celestial
    except Exception:  # a broken WCS is treated as no WCS
        return None
    return wcs if wcs.has_celestial and wcs.naxis == 2 else None


def _centre(header: fits.Header, shape: tuple, stem: str) -> tuple[float | None, float | None]:
    wcs = _celestial_wcs(header)
    if wcs is not None:
        _, height, width = shape
        ra, dec = wcs.all_pix2world([[(width - 1) / 2, (height - 1) / 2]], 0)[0]
        if np.isfinite(ra) and np.isfinite(dec):
            return float(ra) % 360.0, float(dec)
    from_name = coordinates_from_name(stem)
    return from_name if from_name else (None, None)


def _bands(header: fits.Header, n: int) -> str | None:
    names = header.get("BANDS") or header.get("FILTER") or header.get("BAND")
    if names is None:
        return None
    names = str(names).strip()
    if "," in names:
        return names
    # The Legacy Surveys cutout service writes BANDS='grz': one letter per plane.
    return ",".join(names) if len(names) == n else names


def _pixel_scale(header: fits.Header) -> float | None:
    wcs = _celestial_wcs(header)
    if wcs is not None:
        scales = wcs.proj_plane_pixel_scales()
        return float(np.mean([s.to_value("arcsec") for s in scales]))
    value = header.get("PIXSCALE")
    return float(value) if value is not None else None
