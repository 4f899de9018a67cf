"""Reading detection fields: FITS images with a WCS, their truth catalog, model input.

A *fields directory* holds ``fields/*.fits`` (or the FITS files themselves) and, for
training and evaluation, ``truth.csv`` (see :mod:`galdb.sim.fields`). A field is read one at
a time; nothing holds a whole directory of pixels.
"""

from __future__ import annotations

import csv
import pathlib
import warnings
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from galdb.detect.model import KINDS
from galdb.errors import GaldbError
from galdb.lvm.preprocess import Preprocessing, normalise, stretch_flux
from galdb.sim.fields import observed_radius_px

DEFAULT_BANDS = ("g", "r", "z")
TRUTH = "truth.csv"


@dataclass(frozen=True)
class FieldImage:
    """One field: its name (file stem), pixels ``(bands, H, W)``, band names and WCS."""

    name: str
    pixels: np.ndarray
    bands: list[str]
    wcs: WCS | None
    psf_fwhm_r: float | None

    def sky(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """RA, Dec (deg) of 0-based pixel positions, or None without a celestial WCS."""
        if self.wcs is None:
            return None
        ra, dec = self.wcs.wcs_pix2world(np.asarray(x), np.asarray(y), 0)
        return np.mod(ra, 360.0), dec


def field_paths(directory) -> list[pathlib.Path]:
    """The FITS fields of a directory (its ``fields/`` folder if it has one), sorted."""
    root = pathlib.Path(directory)
    folder = root / "fields" if (root / "fields").is_dir() else root
    if not folder.is_dir():
        raise GaldbError(f"{root}: not a directory of fields")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".fits", ".fit"))
    if not paths:
        raise GaldbError(f"{folder}: no .fits fields")
    return paths


def read_field(path: pathlib.Path) -> FieldImage:
    """A field file: a 2-D image or a ``(bands, H, W)`` cube in the primary HDU."""
    try:
        with fits.open(path, memmap=False) as hdus:
            header = hdus[0].header
            data = hdus[0].data
    except (OSError, ValueError) as exc:
        raise GaldbError(f"{path}: not a readable FITS file ({exc})") from exc
    if data is None or data.ndim not in (2, 3):
        raise GaldbError(f"{path}: primary HDU is not a 2-D image or a (bands, H, W) cube")
    pixels = np.asarray(data, dtype=np.float32)
    if pixels.ndim == 2:
        pixels = pixels[None]
    bands = list(str(header.get("BANDS", "")))
    if len(bands) != pixels.shape[0]:
        bands = list(DEFAULT_BANDS[: pixels.shape[0]]) if pixels.shape[0] == 3 else ["r"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header).celestial
    fwhm = header.get("PSFFWHMR")
    return FieldImage(path.stem, pixels, bands, wcs if wcs.has_celestial else None, fwhm)


def model_input(field: FieldImage, prep: Preprocessing) -> torch.Tensor:
    """The normalised ``(channels, H, W)`` input of the LVM's preprocessing, at full
    resolution (no crop or resize: positions stay pixel positions)."""
    return normalise(torch.from_numpy(stretch_flux(field.pixels, field.bands, prep)), prep)


def noise_matched(field: FieldImage) -> FieldImage:
    """A foreign frame (any unit, any depth) as the simulator's g, r, z nanomaggies: each
    band minus its background, scaled so its background RMS is the simulated sky noise of
    that band; a single band is repeated on g, r and z. Lets a detector trained on
    simulated fields (and SEP with the same settings) run on real frames."""
    import sep

    from galdb.sim.simulate import DEPTH_5SIGMA, PSF_FWHM_MEDIAN, pixel_noise_sigma

    planes = field.pixels if field.pixels.shape[0] == 3 else np.repeat(field.pixels[:1], 3, 0)
    out = []
    for band, plane in enumerate(planes):
        plane = np.ascontiguousarray(np.nan_to_num(plane.astype(np.float64)))
        background = sep.Background(plane)
        sigma = pixel_noise_sigma(DEPTH_5SIGMA[band], PSF_FWHM_MEDIAN[band])
        out.append((plane - background.back()) / max(background.globalrms, 1e-30) * sigma)
    pixels = np.stack(out).astype(np.float32)
    return FieldImage(field.name, pixels, list(DEFAULT_BANDS), field.wcs, field.psf_fwhm_r)


def read_truth(directory) -> dict[str, np.ndarray]:
    """Field name -> rows ``(x, y, kind_index, observed_radius_px)`` of ``truth.csv``; the
    radius needs each field's r-band PSF FWHM, read from its header."""
    root = pathlib.Path(directory)
    path = root / TRUTH
    if not path.exists():
        raise GaldbError(f"{root}: no {TRUTH} (write fields with galdb simulate-fields)")
    fwhm = {p.stem: fits.getheader(p).get("PSFFWHMR", 1.3) for p in field_paths(root)}
    rows: dict[str, list] = defaultdict(list)
    with path.open(newline="", encoding="utf-8") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            try:
                kind = KINDS.index(row["kind"])
                x, y, size = float(row["x"]), float(row["y"]), float(row["size"])
                name = row["field"]
            except (KeyError, ValueError, TypeError) as exc:
                raise GaldbError(f"{path}, line {line}: bad truth row ({exc})") from None
            if name not in fwhm:
                raise GaldbError(f"{path}, line {line}: field {name!r} has no FITS file")
            rows[name].append((x, y, kind, observed_radius_px(size, fwhm[name])))
    return {name: np.asarray(rows.get(name, []), dtype=np.float64).reshape(-1, 4) for name in fwhm}
