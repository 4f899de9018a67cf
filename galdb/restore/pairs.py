"""Reading a folder of restoration pairs written by `galdb.sim.pairs.simulate_pairs`.

A training or evaluation set is small next to a release (thousands of 64-pixel cutouts), so
:func:`load_pairs` reads it whole into memory.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from galdb.errors import GaldbError
from galdb.lvm.pixels import PixelRef, read_pixels
from galdb.sim.morphology import BANDS
from galdb.sim.pairs import PAIRS_INDEX

NEEDED = ("source_id", "file", "clean_file", "psf_fwhm_r_arcsec", "clean_psf_fwhm_arcsec")


@dataclass(frozen=True)
class Pairs:
    """Degraded and clean images of a pairs folder, with the index rows.

    Attributes
    ----------
    degraded, clean : numpy.ndarray
        (N, 3, H, W) float32 flux, bands `BANDS`.
    rows : list of dict
        The index rows, in order (truth parameters as text).
    psf_fwhm : numpy.ndarray
        (N, 3) degraded PSF FWHM (arcsec) per band, from the cutouts' headers.
    clean_fwhm : numpy.ndarray
        (N,) FWHM (arcsec) of the clean images' Gaussian PSF.
    """

    degraded: np.ndarray
    clean: np.ndarray
    rows: list[dict]
    psf_fwhm: np.ndarray
    clean_fwhm: np.ndarray

    bands = list(BANDS)

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, index: np.ndarray) -> Pairs:
        return Pairs(
            self.degraded[index],
            self.clean[index],
            [self.rows[i] for i in index],
            self.psf_fwhm[index],
            self.clean_fwhm[index],
        )


def load_pairs(folder: Path, limit: int | None = None) -> Pairs:
    """Read ``folder/pairs.csv`` and its images (the first ``limit`` rows if given).

    Raises
    ------
    GaldbError
        The index is missing or lacks a column, a row's value or file is bad (naming it).
    """
    folder = Path(folder)
    index = folder / PAIRS_INDEX
    if not index.is_file():
        raise GaldbError(f"{index} not found: write pairs with galdb simulate OUT --pairs")
    degraded, clean, rows, psf, clean_fwhm = [], [], [], [], []
    with index.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        absent = [c for c in NEEDED if c not in (reader.fieldnames or [])]
        if absent:
            raise GaldbError(f"{index} lacks the column(s) {', '.join(absent)}")
        for line, row in enumerate(reader, start=2):
            if limit is not None and len(rows) >= limit:
                break
            where = f"{index} line {line}"
            d, c = (_read(folder / row[k], where) for k in ("file", "clean_file"))
            if d.shape != c.shape or d.shape[0] != len(BANDS):
                raise GaldbError(
                    f"{where}: degraded {d.shape} and clean {c.shape} images must both be "
                    f"({len(BANDS)}, H, W)"
                )
            degraded.append(d)
            clean.append(c)
            psf.append(_psf_fwhm(folder / row["file"], where))
            clean_fwhm.append(_number(row, "clean_psf_fwhm_arcsec", where))
            rows.append(row)
    if not rows:
        raise GaldbError(f"{index} has no pairs")
    shapes = {d.shape for d in degraded}
    if len(shapes) > 1:
        raise GaldbError(f"{index}: the pairs have several image shapes {sorted(shapes)}")
    return Pairs(np.stack(degraded), np.stack(clean), rows, np.array(psf), np.array(clean_fwhm))


def _read(path: Path, where: str) -> np.ndarray:
    if not path.is_file():
        raise GaldbError(f"{where}: file {path} not found")
    image = read_pixels(PixelRef(str(path)))
    if not np.isfinite(image).all():
        raise GaldbError(f"{where}: {path} has NaN or infinite pixels")
    return image


def _number(row: dict, column: str, where: str) -> float:
    try:
        value = float(row[column])
    except (TypeError, ValueError):
        raise GaldbError(f"{where}: {column} {row[column]!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise GaldbError(f"{where}: {column} {row[column]!r} must be positive")
    return value


def _psf_fwhm(path: Path, where: str) -> list[float]:
    """The g, r, z PSF FWHM a simulated cutout's header records (PSFFWHMG/R/Z)."""
    from astropy.io import fits

    header = fits.getheader(path)
    try:
        return [float(header[f"PSFFWHM{b.upper()}"]) for b in BANDS]
    except KeyError as exc:
        raise GaldbError(f"{where}: {path} has no PSF keyword {exc}") from None
