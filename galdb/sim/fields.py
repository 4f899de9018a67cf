"""Simulated survey fields for object detection: galaxies and stars at known positions.

`simulate_fields` writes ``n`` three-band (g, r, z) FITS fields, ``size`` x ``size`` pixels at
0.262"/px with a TAN WCS, and one truth catalog (``truth.csv``) listing every object drawn:
its field, pixel position, sky position, kind (galaxy or star), r-band flux (nanomaggies),
intrinsic half-light radius (arcsec, 0 for a star) and the galaxy's morphological class.

Conventions:

- pixel positions ``x`` (column) and ``y`` (row) are 0-based: the centre of the first pixel
  is (0, 0), as numpy indexes the image and as astropy's ``wcs_pix2world(..., 0)`` reads
  them; the sky position is that pixel position through the field's WCS;
- each field's random choices come from its own stream seeded by ``(seed, index)``, so field
  ``i`` is the same whatever ``n`` is, and the object list is drawn before any pixel: a
  resumed run rewrites the truth rows of fields already on disk without drawing them again;
- galaxies use the cutout simulator's morphologies (:func:`galdb.sim.morphology.make_galaxy`)
  rescaled to a fainter r-magnitude range (``GALAXY_MAG_R``; the size shrinks by 1.26 per
  magnitude, as in the cutout simulator), stars are the PSF itself; objects keep at least
  ``MIN_SEPARATION_PX`` between centres, so the truth has no unresolvable pairs;
- the PSF (Moffat), sky noise and source noise are the cutout simulator's
  (:mod:`galdb.sim.simulate`), so a field looks like a mosaic of its cutouts.
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Callable
from dataclasses import dataclass

import galsim
import numpy as np
from astropy.wcs import WCS

from galdb.files import streamed_csv, write_fits
from galdb.sim.morphology import CLASSES, mag_to_nanomaggies, make_galaxy
from galdb.sim.simulate import (
    DEPTH_5SIGMA,
    GSPARAMS,
    PIXEL_SCALE,
    PSF_BETA,
    PSF_FWHM_MEDIAN,
    PSF_FWHM_SCATTER,
    _add_noise,
    _one_galsim_thread,
    _sky_position,
    _validate,
    cutout_header,
    pixel_noise_sigma,
)

__all__ = [
    "FIELD_SIZE",
    "TRUTH_COLUMNS",
    "FieldObject",
    "field_objects",
    "field_path",
    "observed_radius_px",
    "simulate_field",
    "simulate_fields",
]

FIELD_SIZE = 256
# Objects per 256 x 256 field (inclusive ranges, uniform); other sizes scale with the area.
GALAXIES_PER_FIELD = (6, 16)
STARS_PER_FIELD = (2, 8)
GALAXY_MAG_R = (17.0, 22.0)  # power-law counts, as the cutout simulator's
STAR_MAG_R = (16.0, 22.0)  # uniform
MIN_SEPARATION_PX = 5.0  # about the PSF FWHM: close pairs, still resolvable
EDGE_PX = 4.0  # centres at least this far inside the field
TRUTH_COLUMNS = ("field", "x", "y", "ra", "dec", "kind", "flux", "size", "morph_class")
KINDS = ("galaxy", "star")
_FIELD_STREAM, _NOISE_STREAM = 0xF1E1D, 0xF1015E


@dataclass(frozen=True)
class FieldObject:
    """One object of a field, as the truth catalog lists it.

    Attributes
    ----------
    x, y : float
        0-based pixel position (column, row).
    kind : str
        ``galaxy`` or ``star``.
    mags : tuple of float
        g, r, z AB magnitudes.
    size : float
        Intrinsic half-light radius in arcsec (0 for a star).
    profile : callable
        band index -> GalSim profile in nanomaggies, not yet convolved with the PSF.
    morph_class : str
        The galaxy's class (:data:`galdb.sim.morphology.CLASSES`; a merger's position is its
        brighter member's centre), empty for a star.
    """

    x: float
    y: float
    kind: str
    mags: tuple[float, float, float]
    size: float
    profile: Callable[[int], galsim.GSObject]
    morph_class: str = ""

    @property
    def flux_r(self) -> float:
        return float(mag_to_nanomaggies(self.mags[1]))


@dataclass(frozen=True)
class Field:
    """A field's pointing, PSF and objects (what is drawn, before any pixel)."""

    name: str
    ra: float
    dec: float
    psf_fwhm: tuple[float, float, float]
    objects: list[FieldObject]


def field_path(out_dir, name: str) -> pathlib.Path:
    return pathlib.Path(out_dir) / "fields" / f"{name}.fits"


def observed_radius_px(size_arcsec: float, psf_fwhm_arcsec: float) -> float:
    """Approximate observed half-light radius in pixels: intrinsic and PSF in quadrature."""
    return math.hypot(size_arcsec, psf_fwhm_arcsec / 2.0) / PIXEL_SCALE


def field_objects(
    seed: int,
    index: int,
    *,
    size: int = FIELD_SIZE,
    ra_center: float = 150.0,
    dec_center: float = 2.0,
    field_radius_deg: float = 1.0,
) -> Field:
    """Field ``index`` of run ``seed``: pointing, PSF and objects, without drawing pixels."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, index, _FIELD_STREAM]))
    ra, dec = _sky_position(rng, ra_center, dec_center, field_radius_deg)
    fwhm = tuple(round(m * float(rng.lognormal(0.0, PSF_FWHM_SCATTER)), 4) for m in PSF_FWHM_MEDIAN)
    area = (size / FIELD_SIZE) ** 2
    n_gal = max(
        1, round(area * int(rng.integers(GALAXIES_PER_FIELD[0], GALAXIES_PER_FIELD[1] + 1)))
    )
    n_star = max(1, round(area * int(rng.integers(STARS_PER_FIELD[0], STARS_PER_FIELD[1] + 1))))
    positions = _positions(rng, n_gal + n_star, size)
    objects = []
    for i, (x, y) in enumerate(positions):
        objects.append(_galaxy(rng, x, y) if i < n_gal else _star(rng, x, y))
    return Field(f"field_{seed}_{index:05d}", ra, dec, fwhm, objects)


def _positions(rng: np.random.Generator, n: int, size: int) -> list[tuple[float, float]]:
    """Up to ``n`` positions at least MIN_SEPARATION_PX apart (fewer if the field is full)."""
    placed: list[tuple[float, float]] = []
    for _ in range(n * 50):
        if len(placed) == n:
            break
        x, y = (float(v) for v in rng.uniform(EDGE_PX, size - 1 - EDGE_PX, 2))
        if all(math.hypot(x - px, y - py) >= MIN_SEPARATION_PX for px, py in placed):
            placed.append((round(x, 3), round(y, 3)))
    return placed


def _galaxy(rng: np.random.Generator, x: float, y: float) -> FieldObject:
    model = make_galaxy(CLASSES[int(rng.integers(len(CLASSES)))], rng)
    lo, hi = GALAXY_MAG_R
    span = 10.0 ** (0.4 * (hi - lo)) - 1.0
    mag_r = lo + math.log10(1.0 + rng.uniform() * span) / 0.4
    shift = mag_r - float(model.mags()[1])
    scale, dilation = 10.0 ** (-0.4 * shift), 10.0 ** (-0.1 * shift)
    mags = tuple(round(float(m) + shift, 4) for m in model.mags())

    def profile(band: int) -> galsim.GSObject:
        return (model.profile(band) * scale).dilate(dilation)

    hlr = round(float(model.half_light_radius_arcsec) * dilation, 4)
    return FieldObject(x, y, "galaxy", mags, hlr, profile, model.morph_class)


def _star(rng: np.random.Generator, x: float, y: float) -> FieldObject:
    mag_r = float(rng.uniform(*STAR_MAG_R))
    g_r, r_z = float(rng.uniform(0.3, 1.4)), float(rng.uniform(0.1, 0.9))
    mags = (round(mag_r + g_r, 4), round(mag_r, 4), round(mag_r - r_z, 4))

    def profile(band: int) -> galsim.GSObject:
        return galsim.DeltaFunction(flux=float(mag_to_nanomaggies(mags[band])))

    return FieldObject(x, y, "star", mags, 0.0, profile)


def simulate_field(field: Field, seed: int, index: int, *, size: int = FIELD_SIZE, noise=True):
    """The (3, size, size) float32 nanomaggy image of a field."""
    noise_seed = np.random.SeedSequence([seed, index, _NOISE_STREAM]).generate_state(1)[0]
    deviate = galsim.BaseDeviate(int(noise_seed) | 1)
    bands = []
    for band, depth in enumerate(DEPTH_5SIGMA):
        image = galsim.ImageD(size, size, scale=PIXEL_SCALE)
        psf = galsim.Moffat(beta=PSF_BETA, fwhm=field.psf_fwhm[band])
        for obj in field.objects:
            _draw_object(image, obj, band, psf, observed_radius_px(obj.size, field.psf_fwhm[band]))
        if noise:
            _add_noise(image, pixel_noise_sigma(depth, field.psf_fwhm[band]), band, deviate)
        bands.append(image.array)
    return np.stack(bands).astype(np.float32)


def _draw_object(image: galsim.ImageD, obj: FieldObject, band: int, psf, radius_px: float):
    """Add one object, drawn on a stamp around it (GalSim positions are 1-based)."""
    half = int(min(64, max(12, math.ceil(8 * radius_px))))
    ix, iy = round(obj.x) + 1, round(obj.y) + 1
    stamp = galsim.ImageD(galsim.BoundsI(ix - half, ix + half, iy - half, iy + half))
    stamp.scale = PIXEL_SCALE
    offset = galsim.PositionD(obj.x + 1 - stamp.true_center.x, obj.y + 1 - stamp.true_center.y)
    scene = galsim.Convolve(obj.profile(band), psf, gsparams=GSPARAMS)
    scene.drawImage(image=stamp, offset=offset, method="auto")
    overlap = stamp.bounds & image.bounds
    image[overlap] += stamp[overlap]


def simulate_fields(
    out_dir,
    n: int,
    seed: int = 0,
    *,
    size: int = FIELD_SIZE,
    ra_center: float = 150.0,
    dec_center: float = 2.0,
    field_radius_deg: float = 1.0,
    resume: bool = True,
    progress: Callable[[int], object] | None = None,
) -> pathlib.Path:
    """Write ``n`` fields to ``out_dir/fields/`` and their truth to ``out_dir/truth.csv``;
    return the truth path.

    With ``resume`` a field whose file exists is not drawn again (its truth rows are still
    written, from its random stream), so an interrupted run continues where it stopped.
    The truth goes to a side file renamed at the end: no complete-looking partial catalog.
    Same ``(n, seed, size)``, same files.
    """
    n, seed, size = _validate(n, seed, size, dec_center, field_radius_deg)
    out = pathlib.Path(out_dir)
    (out / "fields").mkdir(parents=True, exist_ok=True)
    truth = out / "truth.csv"
    sky = {"ra_center": ra_center, "dec_center": dec_center, "field_radius_deg": field_radius_deg}
    with _one_galsim_thread(), streamed_csv(truth, TRUTH_COLUMNS) as writer:
        for index in range(n):
            field = field_objects(seed, index, size=size, **sky)
            path = field_path(out, field.name)
            header = cutout_header(field.ra, field.dec, size, field.psf_fwhm)
            header["OBJECT"] = field.name
            if not (resume and path.exists()):
                pixels = simulate_field(field, seed, index, size=size)
                write_fits(path, pixels, header)
            celestial = WCS(header).celestial
            for obj in field.objects:
                ra, dec = celestial.wcs_pix2world([[obj.x, obj.y]], 0)[0]
                writer.writerow(
                    [field.name, obj.x, obj.y, round(float(ra), 8), round(float(dec), 8),
                     obj.kind, round(obj.flux_r, 5), obj.size, obj.morph_class]
                )  # fmt: skip
            if progress is not None:
                progress(1)
    return truth
