"""Restoration pairs: each simulated galaxy clean (sharp, noise-free) and degraded (survey).

`simulate_pairs` writes, for galaxy ``i`` of release ``seed``:

- ``cutouts/<id>.fits``: the degraded cutout, byte for byte what `simulate_release` writes
  (Moffat PSF of DR9-like seeing, sky and source noise), so the folder ingests as a release;
- ``clean/<id>.fits``: the same galaxy drawn through a narrow Gaussian PSF of
  ``clean_fwhm`` arcsec (header ``PSFTYPE = 'GAUSSIAN'``) without noise, the restoration
  target;
- ``pairs.csv``: the truth catalog (`CATALOG_COLUMNS`, ``file`` being the degraded cutout)
  plus ``clean_file`` and ``clean_psf_fwhm_arcsec``.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import galsim
import numpy as np
from astropy.io import fits

from galdb.sim.simulate import (
    CATALOG_COLUMNS,
    _validate,
    catalog_row,
    cutout_header,
    draw_band,
    galaxy_truth,
    simulate_galaxy,
    write_cutout,
    write_indexed,
)

PAIR_COLUMNS = (*CATALOG_COLUMNS, "clean_file", "clean_psf_fwhm_arcsec")
PAIRS_INDEX = "pairs.csv"
CLEAN_FWHM = 0.5  # arcsec: about 2 pixels, a space-telescope-like target

__all__ = ["CLEAN_FWHM", "PAIRS_INDEX", "PAIR_COLUMNS", "clean_image", "simulate_pairs"]


def simulate_pairs(
    out_dir,
    n: int,
    seed: int = 0,
    *,
    size: int = 64,
    clean_fwhm: float = CLEAN_FWHM,
    ra_center: float = 150.0,
    dec_center: float = 2.0,
    field_radius_deg: float = 1.0,
    progress: Callable[[int], object] | None = None,
) -> pathlib.Path:
    """Write n clean/degraded pairs and their index into out_dir; return the index path.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Directory, created if missing; files of the same names are replaced.
    n, seed, size, ra_center, dec_center, field_radius_deg
        As for `galdb.sim.simulate_release` (galaxy ``i`` is the same galaxy there).
    clean_fwhm : float, optional
        FWHM in arcsec of the Gaussian PSF of the clean images (> 0).
    progress : callable, optional
        Called with 1 after each pair is written.

    Returns
    -------
    pathlib.Path
        ``out_dir/pairs.csv``.

    Raises
    ------
    ValueError
        If an argument is out of range.
    """
    n, seed, size = _validate(n, seed, size, dec_center, field_radius_deg)
    if not clean_fwhm > 0:
        raise ValueError(f"clean_fwhm must be positive, got {clean_fwhm!r}")
    out = pathlib.Path(out_dir)
    for sub in ("cutouts", "clean"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    field = {"ra_center": ra_center, "dec_center": dec_center, "field_radius_deg": field_radius_deg}

    def write(i: int) -> list:
        degraded = simulate_galaxy(seed, i, size=size, **field)
        name = f"{degraded.source_id}.fits"
        rel, clean_rel = f"cutouts/{name}", f"clean/{name}"
        write_cutout(out / rel, degraded)
        header = cutout_header(degraded.ra, degraded.dec, size, (clean_fwhm,) * 3)
        header["OBJECT"] = degraded.source_id
        header["PSFTYPE"] = ("GAUSSIAN", "restoration target: Gaussian PSF, no noise")
        del header["PSFBETA"]
        image = clean_image(seed, i, size=size, clean_fwhm=clean_fwhm, **field)
        fits.PrimaryHDU(data=image, header=header).writeto(out / clean_rel, overwrite=True)
        return [*catalog_row(degraded, rel), clean_rel, clean_fwhm]

    return write_indexed(out / PAIRS_INDEX, PAIR_COLUMNS, n, write, progress)


def clean_image(
    seed: int, index: int, *, size: int = 64, clean_fwhm: float = CLEAN_FWHM, **field
) -> np.ndarray:
    """The noise-free (3, size, size) float32 image of a galaxy through a narrow Gaussian PSF.

    ``field`` takes the ``ra_center``, ``dec_center`` and ``field_radius_deg`` of the release.
    """
    defaults = {"ra_center": 150.0, "dec_center": 2.0, "field_radius_deg": 1.0}
    truth = galaxy_truth(seed, index, **(defaults | field))
    psf = galsim.Gaussian(fwhm=clean_fwhm)
    bands = [draw_band(truth.model, b, psf, size).array for b in range(3)]
    return np.stack(bands).astype(np.float32)
