"""Deterministic mock survey release imitating DESI Legacy Imaging Surveys DR9 cutouts.

`simulate_release` writes ``n`` three-band (g, r, z) FITS cutouts and a truth catalog. Every
galaxy is drawn from its own random stream seeded by ``(seed, index)``, so galaxy ``i`` is the
same whatever ``n`` is, and reruns are byte-identical. Images are in nanomaggies (AB zero
point 22.5) at 0.262 arcsec/pixel, convolved with a Moffat PSF and with sky noise matching
DR9-like 5-sigma point-source depths.
"""

from __future__ import annotations

import contextlib
import functools
import math
import operator
import pathlib
from collections.abc import Callable
from dataclasses import dataclass, replace

import galsim
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from galdb.files import streamed_csv
from galdb.sim.morphology import BANDS, CLASSES, ZERO_POINT, GalaxyModel, make_galaxy
from galdb.sim.morphology import mag_to_nanomaggies as _nmgy

__all__ = [
    "CATALOG_COLUMNS",
    "CLASSES",
    "PIXEL_SCALE",
    "SimulatedGalaxy",
    "catalog_row",
    "cutout_header",
    "draw_band",
    "galaxy_truth",
    "moffat_psf",
    "pixel_noise_sigma",
    "simulate_galaxy",
    "simulate_release",
    "write_cutout",
    "write_indexed",
]

PIXEL_SCALE = 0.262  # arcsec/pixel, DECam and the Legacy Surveys coadds
PSF_BETA = 3.5
PSF_FWHM_MEDIAN = (1.5, 1.3, 1.2)  # arcsec in g, r, z: typical DR9 seeing
PSF_FWHM_SCATTER = 0.08  # log-normal sigma: seeing varies a little from brick to brick
DEPTH_5SIGMA = (24.0, 23.4, 22.5)  # AB 5-sigma point-source depths in g, r, z
# Photo-electrons per nanomaggy in a ~300 s DECam stack: sets the source shot noise.
ELECTRONS_PER_NMGY = (3200.0, 3900.0, 2800.0)
# Looser than GalSim's defaults: errors of 1e-4 of the flux are far below the sky noise, and
# they halve the one-off cost of each Sersic index and keep the FFTs small.
GSPARAMS = galsim.GSParams(folding_threshold=1e-2, kvalue_accuracy=1e-4, xvalue_accuracy=1e-4)
MIN_SIZE = 16
CATALOG_COLUMNS = (
    "source_id", "ra", "dec", "file", "morph_class", "sersic_n", "half_light_radius_arcsec",
    "ellipticity", "position_angle_deg", "mag_g", "mag_r", "mag_z", "psf_fwhm_r_arcsec",
    "bar", "ring",
)  # fmt: skip
# Tags that keep the per-galaxy, noise and class random streams independent of each other.
_GALAXY_STREAM, _NOISE_STREAM, _CLASS_STREAM = 0x6A1A, 0x9015E, 0xC1A5


@dataclass(frozen=True)
class SimulatedGalaxy:
    """One simulated cutout with its truth.

    Attributes
    ----------
    source_id : str
        ``sim_<seed>_<index:07d>``.
    ra, dec : float
        Galaxy centre in degrees (ICRS), ``ra`` in [0, 360).
    model : GalaxyModel
        Morphological class, components and structural truth.
    psf_fwhm : tuple of float
        Moffat PSF FWHM in arcsec in g, r, z.
    image : numpy.ndarray or None
        float32 array of shape (3, size, size), bands g, r, z, in nanomaggies (None from
        `galaxy_truth`, which draws no image).
    """

    source_id: str
    ra: float
    dec: float
    model: GalaxyModel
    psf_fwhm: tuple[float, float, float]
    image: np.ndarray | None


def simulate_release(
    out_dir,
    n: int,
    seed: int = 0,
    *,
    size: int = 64,
    ra_center: float = 150.0,
    dec_center: float = 2.0,
    field_radius_deg: float = 1.0,
    progress: Callable[[int], object] | None = None,
) -> pathlib.Path:
    """Write n cutouts + catalog into out_dir, return the catalog path.

    Each cutout is written to ``out_dir/cutouts/sim_<seed>_<i:07d>.fits`` as it is made;
    the truth rows go to ``out_dir/catalog.csv``.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Release directory, created if missing; existing files of the same names are replaced.
    n : int
        Number of galaxies, at least 1.
    seed : int, optional
        Non-negative release seed; the same ``(n, seed, size)`` gives identical output.
    size : int, optional
        Cutout side in pixels, at least 16.
    ra_center, dec_center, field_radius_deg : float, optional
        Galaxies are uniform on the spherical cap of this radius (deg) around this centre.
    progress : callable, optional
        Called with 1 after each galaxy is written, e.g. to advance a progress bar.

    Returns
    -------
    pathlib.Path
        Path of the catalog CSV.

    Raises
    ------
    ValueError
        If an argument is out of range.
    """
    n, seed, size = _validate(n, seed, size, dec_center, field_radius_deg)
    out = pathlib.Path(out_dir)
    (out / "cutouts").mkdir(parents=True, exist_ok=True)
    field = {"ra_center": ra_center, "dec_center": dec_center, "field_radius_deg": field_radius_deg}

    def write(index: int) -> list:
        galaxy = simulate_galaxy(seed, index, size=size, **field)
        rel = f"cutouts/{galaxy.source_id}.fits"
        write_cutout(out / rel, galaxy)
        return catalog_row(galaxy, rel)

    return write_indexed(out / "catalog.csv", CATALOG_COLUMNS, n, write, progress)


def write_indexed(
    index: pathlib.Path,
    columns: tuple[str, ...],
    n: int,
    write: Callable[[int], list],
    progress: Callable[[int], object] | None = None,
) -> pathlib.Path:
    """Call ``write(i)`` for i in range(n) (it writes galaxy i's files and returns its index
    row) and stream the rows into the CSV ``index``, on one GalSim thread; return ``index``.

    Rows stream through :func:`streamed_csv`: an interrupted run leaves no index that looks
    complete.
    """
    with _one_galsim_thread(), streamed_csv(index, columns) as writer:
        for i in range(n):
            writer.writerow(write(i))
            if progress is not None:
                progress(1)
    return index


def simulate_galaxy(
    seed: int,
    index: int,
    *,
    size: int = 64,
    ra_center: float = 150.0,
    dec_center: float = 2.0,
    field_radius_deg: float = 1.0,
    noise: bool = True,
) -> SimulatedGalaxy:
    """Simulate galaxy `index` of release `seed` in memory, without writing anything.

    Parameters
    ----------
    seed, index : int
        Release seed and galaxy number; together they fix every random choice.
    size : int, optional
        Cutout side in pixels.
    ra_center, dec_center, field_radius_deg : float, optional
        Field the position is drawn in, as for `simulate_release`.
    noise : bool, optional
        Add sky and source noise; switch off for noise-free truth images.

    Returns
    -------
    SimulatedGalaxy
        The image and its truth, as `simulate_release` would write them.
    """
    truth = galaxy_truth(seed, index, ra_center, dec_center, field_radius_deg)
    noise_seed = np.random.SeedSequence([seed, index, _NOISE_STREAM]).generate_state(1)[0]
    deviate = galsim.BaseDeviate(int(noise_seed) | 1)  # seed 0 would mean "seed from the clock"
    bands = []
    for band, depth in enumerate(DEPTH_5SIGMA):
        image = draw_band(truth.model, band, moffat_psf(truth.psf_fwhm[band]), size)
        if noise:
            _add_noise(image, pixel_noise_sigma(depth, truth.psf_fwhm[band]), band, deviate)
        bands.append(image.array)
    return replace(truth, image=np.stack(bands).astype(np.float32))


def galaxy_truth(
    seed: int, index: int, ra_center: float, dec_center: float, field_radius_deg: float
) -> SimulatedGalaxy:
    """Galaxy `index` of release `seed` without its image (``image`` is None): position,
    PSF FWHM per band and model, drawn from the galaxy's own random stream."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, index, _GALAXY_STREAM]))
    ra, dec = _sky_position(rng, ra_center, dec_center, field_radius_deg)
    fwhm = tuple(round(m * float(rng.lognormal(0.0, PSF_FWHM_SCATTER)), 4) for m in PSF_FWHM_MEDIAN)
    model = make_galaxy(_morph_class(seed, index), rng)
    return SimulatedGalaxy(f"sim_{seed}_{index:07d}", ra, dec, model, fwhm, None)


def pixel_noise_sigma(depth_mag: float, fwhm_arcsec: float) -> float:
    """Per-pixel sky noise giving a 5-sigma point-source depth with a Moffat PSF.

    A point source measured with its PSF profile has ``S/N = flux / (sigma * sqrt(NEA))``,
    NEA being the PSF's noise-equivalent area; for a Moffat of index beta and core radius
    alpha, ``NEA = pi alpha**2 (2 beta - 1) / (beta - 1)**2``.

    Parameters
    ----------
    depth_mag : float
        5-sigma point-source depth, AB magnitude.
    fwhm_arcsec : float
        PSF FWHM in arcsec.

    Returns
    -------
    float
        Gaussian noise sigma per pixel in nanomaggies.
    """
    alpha = fwhm_arcsec / (2.0 * math.sqrt(2.0 ** (1.0 / PSF_BETA) - 1.0))
    nea = math.pi * alpha**2 * (2.0 * PSF_BETA - 1.0) / (PSF_BETA - 1.0) ** 2
    return float(_nmgy(depth_mag)) / (5.0 * math.sqrt(nea / PIXEL_SCALE**2))


def cutout_header(ra: float, dec: float, size: int, psf_fwhm) -> fits.Header:
    """FITS header of a cutout: TAN WCS centred on the galaxy plus survey keywords.

    Parameters
    ----------
    ra, dec : float
        Galaxy centre in degrees, placed at the cutout centre ``CRPIX = size / 2 + 0.5``.
    size : int
        Cutout side in pixels.
    psf_fwhm : sequence of float
        PSF FWHM in arcsec in g, r, z.

    Returns
    -------
    astropy.io.fits.Header
        Header with a CD matrix (north up, east left) and the band, unit and PSF keywords.
    """
    header = _header_template(size).copy()
    header["CRVAL1"], header["CRVAL2"] = ra, dec
    # What astropy's WCS.to_header writes for a TAN projection centred at (ra, dec).
    header["LATPOLE"] = dec
    for band, fwhm in zip(BANDS, psf_fwhm, strict=True):
        header[f"PSFFWHM{band.upper()}"] = fwhm
    return header


@functools.lru_cache(maxsize=8)
def _header_template(size: int) -> fits.Header:
    """Header for a cutout side, built once through astropy.wcs because that is slow.

    Per-galaxy values (CRVAL, LATPOLE, PSF FWHM) are placeholders that `cutout_header`
    overwrites in a copy.
    """
    # The cube's third axis gets its own WCS axis (band plane index, 0 = g): wcslib always
    # describes every NAXIS axis, and with a CD matrix missing CD3_3 astropy warns on reading.
    wcs = WCS(naxis=3)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN", "BAND"]
    wcs.wcs.crval = [0.0, 0.0, 0.0]
    wcs.wcs.crpix = [size / 2 + 0.5, size / 2 + 0.5, 1.0]
    wcs.wcs.cd = np.diag([-PIXEL_SCALE / 3600.0, PIXEL_SCALE / 3600.0, 1.0])
    header = wcs.to_header()
    # astropy writes the CD matrix as PC + CDELT; survey cutouts carry CD keywords.
    for key in list(header):
        if key.startswith(("PC", "CDELT")):
            del header[key]
    for i, j in ((1, 1), (1, 2), (2, 1), (2, 2), (3, 3)):
        card = (f"CD{i}_{j}", float(wcs.wcs.cd[i - 1][j - 1]), "WCS matrix, deg/pixel")
        header.insert("CUNIT1", card)
    header["CTYPE3"] = ("BAND", "band plane index: 0 = g, 1 = r, 2 = z")
    header["BANDS"] = ("".join(BANDS), "band order of the data cube planes")
    header["SURVEY"] = ("galdb-sim", "GalSim mock of DESI Legacy Surveys DR9")
    header["PIXSCALE"] = (PIXEL_SCALE, "[arcsec/pixel]")
    header["BUNIT"] = ("nanomaggy", f"AB zero point {ZERO_POINT}")
    header["PSFBETA"] = (PSF_BETA, "Moffat beta of the PSF")
    for band, fwhm in zip(BANDS, PSF_FWHM_MEDIAN, strict=True):
        header[f"PSFFWHM{band.upper()}"] = (fwhm, f"[arcsec] {band}-band PSF FWHM")
    return header


def write_cutout(path: pathlib.Path, galaxy: SimulatedGalaxy) -> None:
    """Write one galaxy's (3, size, size) cube and header to a FITS file.

    Parameters
    ----------
    path : pathlib.Path
        Output file, replaced if it exists.
    galaxy : SimulatedGalaxy
        The galaxy to write.
    """
    header = cutout_header(galaxy.ra, galaxy.dec, galaxy.image.shape[-1], galaxy.psf_fwhm)
    header["OBJECT"] = galaxy.source_id
    fits.PrimaryHDU(data=galaxy.image, header=header).writeto(path, overwrite=True)


def catalog_row(galaxy: SimulatedGalaxy, rel_path: str) -> list:
    """Truth catalog row of a galaxy, in `CATALOG_COLUMNS` order.

    Parameters
    ----------
    galaxy : SimulatedGalaxy
        The galaxy.
    rel_path : str
        Its cutout path relative to the release directory.

    Returns
    -------
    list
        Values for the csv writer, rounded to meaningful precision.
    """
    m = galaxy.model
    mags = [round(float(v), 4) for v in m.mags()]
    return [
        galaxy.source_id, galaxy.ra, galaxy.dec, rel_path, m.morph_class, float(m.sersic_n),
        round(float(m.half_light_radius_arcsec), 4), round(float(m.ellipticity), 4),
        round(float(m.position_angle_deg), 3), *mags, galaxy.psf_fwhm[1], int(m.bar),
        int(m.ring),
    ]  # fmt: skip


def _validate(n, seed, size, dec_center, field_radius_deg) -> tuple[int, int, int]:
    """Check release arguments, raising ValueError with a clear message; return the integers."""
    n = _check_int("n", n, 1)
    seed = _check_int("seed", seed, 0)  # SeedSequence only takes non-negative entropy
    size = _check_int("size", size, MIN_SIZE)
    if not -90.0 <= dec_center <= 90.0:
        raise ValueError(f"dec_center must be within [-90, 90] degrees, got {dec_center!r}")
    if not 0.0 < field_radius_deg <= 180.0:
        raise ValueError(f"field_radius_deg must be in (0, 180] degrees, got {field_radius_deg!r}")
    return n, seed, size


def _check_int(name: str, value, minimum: int) -> int:
    """`value` as an int of at least `minimum`, else ValueError naming the argument."""
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _morph_class(seed: int, index: int) -> str:
    """Class of galaxy `index`: each block of five consecutive galaxies has every class once.

    Shuffling within blocks gives exactly equal frequencies without looking at ``n``, so
    galaxy ``i`` keeps its class however many galaxies are made.
    """
    block_rng = np.random.default_rng(np.random.SeedSequence([seed, index // 5, _CLASS_STREAM]))
    return CLASSES[int(block_rng.permutation(len(CLASSES))[index % len(CLASSES)])]


def _sky_position(rng: np.random.Generator, ra_c: float, dec_c: float, radius_deg: float):
    """(ra, dec) in degrees, uniform on the spherical cap of `radius_deg` around the centre.

    Uniform area means uniform cos(distance); the bearing is uniform too. Values are rounded
    to 1e-8 deg (0.04 mas) so the catalog and FITS headers carry exactly the same numbers.
    """
    dist = math.acos(rng.uniform(math.cos(math.radians(radius_deg)), 1.0))
    bearing = rng.uniform(0.0, 2.0 * math.pi)
    d0 = math.radians(dec_c)
    sin_dec = math.sin(d0) * math.cos(dist) + math.cos(d0) * math.sin(dist) * math.cos(bearing)
    dec = math.asin(min(1.0, max(-1.0, sin_dec)))
    d_ra = math.atan2(
        math.sin(bearing) * math.sin(dist) * math.cos(d0),
        math.cos(dist) - math.sin(d0) * sin_dec,
    )
    ra = round((ra_c + math.degrees(d_ra)) % 360.0, 8)
    return (0.0 if ra >= 360.0 else ra), round(math.degrees(dec), 8)


@contextlib.contextmanager
def _one_galsim_thread():
    """Run GalSim's C++ layer on one OpenMP thread, restoring the setting afterwards.

    On 64-pixel stamps the threads only add synchronisation cost (measured: twice the CPU
    time for no wall-clock gain, and slower under load); parallelise over galaxies instead.
    """
    before = galsim.get_omp_threads()
    galsim.set_omp_threads(1)
    try:
        yield
    finally:
        galsim.set_omp_threads(before)


def moffat_psf(fwhm: float) -> galsim.GSObject:
    """The survey PSF of the simulator: a Moffat of index `PSF_BETA` and this FWHM (arcsec)."""
    return galsim.Moffat(beta=PSF_BETA, fwhm=fwhm)


def draw_band(model: GalaxyModel, band: int, psf: galsim.GSObject, size: int) -> galsim.Image:
    """Noise-free image of one band: the galaxy convolved with `psf` and the pixel."""
    scene = galsim.Convolve(model.profile(band), psf, gsparams=GSPARAMS)
    return scene.drawImage(nx=size, ny=size, scale=PIXEL_SCALE, dtype=np.float64, method="auto")


def _add_noise(image: galsim.Image, sky_sigma: float, band: int, deviate) -> None:
    """Add Gaussian sky noise plus Gaussian-approximated shot noise of the source, in place."""
    variance = sky_sigma**2 + np.clip(image.array, 0.0, None) / ELECTRONS_PER_NMGY[band]
    var_image = galsim.ImageD(variance, xmin=image.xmin, ymin=image.ymin)
    image.addNoise(galsim.VariableGaussianNoise(deviate, var_image))
