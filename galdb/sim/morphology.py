"""Galaxy light models for the simulator: one GalSim model per morphological class.

A galaxy is a list of components (bulge, disk, spiral arms, knots, bar, ring, merging
partner), each with
its own shape and its own colour, so that red bulges sit in blue disks and a merger's two
galaxies can differ in colour. Spirals and lenticulars sometimes have a bar (a flat,
elongated n = 0.5 Sersic at any angle to the disk's major axis) and sometimes a ring (knots on
a circle of 0.7-1.8 half-light radii, inclined with the disk); ``GalaxyModel.bar`` and
``.ring`` say which. Every component profile has unit flux and is already sheared,
rotated and shifted into place, in arcsec, with the galaxy centre at the origin; the simulator
scales it by the component's flux in each band and convolves it with that band's PSF.

Position angles are astronomical: degrees east of north. The simulator's images have north up
and east left (``CD1_1 < 0``), so east of north is counter-clockwise from +y, i.e. GalSim's
angle from +x plus 90 degrees.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import galsim
import numpy as np

CLASSES = ("elliptical", "lenticular", "spiral", "edge_on", "merger")
BANDS = ("g", "r", "z")
ZERO_POINT = 22.5  # AB magnitude of 1 nanomaggy

# r-band magnitude range: bright enough to be obvious in Legacy Surveys DR9-depth cutouts.
MAG_R_RANGE = (16.0, 19.5)
# Slope of log10 N(<m) per magnitude: more faint than bright galaxies, as in real counts.
COUNTS_SLOPE = 0.4
# Sersic indices are rounded to this step because GalSim caches the expensive per-n Sersic
# tables; continuous n would rebuild them for every galaxy.
SERSIC_N_STEP = 0.25

__all__ = [
    "BANDS",
    "CLASSES",
    "ZERO_POINT",
    "Component",
    "GalaxyModel",
    "make_galaxy",
    "mag_to_nanomaggies",
    "nanomaggies_to_mag",
]


def mag_to_nanomaggies(mag):
    """Convert AB magnitudes to fluxes in nanomaggies (zero point 22.5).

    Parameters
    ----------
    mag : float or numpy.ndarray
        AB magnitude(s).

    Returns
    -------
    float or numpy.ndarray
        Flux(es) in nanomaggies.
    """
    return 10.0 ** ((ZERO_POINT - np.asarray(mag, dtype=float)) / 2.5)


def nanomaggies_to_mag(flux):
    """Convert fluxes in nanomaggies to AB magnitudes (zero point 22.5).

    Parameters
    ----------
    flux : float or numpy.ndarray
        Positive flux(es) in nanomaggies.

    Returns
    -------
    float or numpy.ndarray
        AB magnitude(s).
    """
    return ZERO_POINT - 2.5 * np.log10(flux)


@dataclass(frozen=True)
class Component:
    """One piece of a galaxy: a unit-flux profile and its g, r, z magnitudes.

    Attributes
    ----------
    profile : galsim.GSObject
        Unit-flux profile in arcsec, positioned relative to the galaxy centre.
    mags : tuple of float
        AB magnitudes of this component in g, r and z.
    """

    profile: galsim.GSObject
    mags: tuple[float, float, float]


@dataclass(frozen=True)
class GalaxyModel:
    """A galaxy's components plus the truth values reported in the catalog.

    The structural truth (``sersic_n``, ``half_light_radius_arcsec``, ``ellipticity``,
    ``position_angle_deg``) describes the dominant component: the bulge of a bulge-dominated
    lenticular, the disk of a spiral or edge-on, the brighter galaxy of a merger.

    Attributes
    ----------
    morph_class : str
        One of `CLASSES`.
    components : tuple of Component
        The pieces whose light adds up to the galaxy.
    sersic_n : float
        Sersic index of the dominant component (1.0 for exponential disks).
    half_light_radius_arcsec : float
        Half-light radius of the dominant component (face-on value for inclined disks).
    ellipticity : float
        ``(1 - q) / (1 + q)`` of the dominant component, ``q`` its projected axis ratio.
    position_angle_deg : float
        Major-axis position angle, degrees east of north, in [0, 180).
    bar, ring : bool
        Whether the disk has a bar, a ring.
    """

    morph_class: str
    components: tuple[Component, ...]
    sersic_n: float
    half_light_radius_arcsec: float
    ellipticity: float
    position_angle_deg: float
    bar: bool = False
    ring: bool = False

    def mags(self) -> np.ndarray:
        """Total g, r, z AB magnitudes of all components together.

        Returns
        -------
        numpy.ndarray
            Shape (3,) magnitudes in band order `BANDS`.
        """
        flux = sum(mag_to_nanomaggies(c.mags) for c in self.components)
        return nanomaggies_to_mag(flux)

    def profile(self, band: int) -> galsim.GSObject:
        """The galaxy's surface brightness in one band, in nanomaggies.

        Parameters
        ----------
        band : int
            Index into `BANDS`.

        Returns
        -------
        galsim.GSObject
            Sum of the components, each scaled to its flux in that band.
        """
        parts = [c.profile * float(mag_to_nanomaggies(c.mags[band])) for c in self.components]
        return parts[0] if len(parts) == 1 else galsim.Sum(parts)


def make_galaxy(morph_class: str, rng: np.random.Generator) -> GalaxyModel:
    """Draw a random galaxy of one class.

    Parameters
    ----------
    morph_class : str
        One of `CLASSES`.
    rng : numpy.random.Generator
        Source of every random choice, so a seeded generator gives the same galaxy.

    Returns
    -------
    GalaxyModel
        The galaxy's components and truth values.

    Raises
    ------
    ValueError
        If `morph_class` is not one of `CLASSES`.
    """
    try:
        builder = _BUILDERS[morph_class]
    except KeyError:
        raise ValueError(
            f"unknown morph_class {morph_class!r}; expected one of {CLASSES}"
        ) from None
    return builder(rng)


# --- shared random draws -------------------------------------------------------------------


def _mag_r(rng: np.random.Generator) -> float:
    """Total r magnitude from a power-law number count between `MAG_R_RANGE` limits."""
    lo, hi = MAG_R_RANGE
    span = 10.0 ** (COUNTS_SLOPE * (hi - lo)) - 1.0
    return lo + np.log10(1.0 + rng.uniform() * span) / COUNTS_SLOPE


def _half_light_radius(
    rng: np.random.Generator, mag_r: float, at_17: float, floor: float = 0.5
) -> float:
    """Size in arcsec that grows with brightness (x1.26 per magnitude), with scatter.

    `at_17` is the typical half-light radius of the class at r = 17; `floor` keeps classes
    whose look depends on being resolved (arms, a thin disk) larger than the PSF.
    """
    size = at_17 * 10.0 ** (-0.1 * (mag_r - 17.0)) * rng.lognormal(0.0, 0.2)
    return float(np.clip(size, floor, 3.5))


def _sersic_n(rng: np.random.Generator, lo: float, hi: float) -> float:
    """Sersic index uniform in [lo, hi], rounded to `SERSIC_N_STEP` for GalSim's cache."""
    return round(round(rng.uniform(lo, hi) / SERSIC_N_STEP) * SERSIC_N_STEP, 3)


def _mags(mag_r: float, g_r: float, r_z: float) -> tuple[float, float, float]:
    """g, r, z magnitudes from an r magnitude and two colours."""
    return (mag_r + g_r, mag_r, mag_r - r_z)


def _split(mag_r: float, fraction: float) -> float:
    """r magnitude of a component carrying `fraction` of a total of `mag_r`."""
    return mag_r - 2.5 * np.log10(fraction)


def _ellipticity(q: float) -> float:
    """Ellipticity ``(1 - q) / (1 + q)`` from an axis ratio."""
    return (1.0 - q) / (1.0 + q)


def _orient(profile: galsim.GSObject, q: float, pa_deg: float) -> galsim.GSObject:
    """Squash a round profile to axis ratio `q`, major axis at `pa_deg` east of north."""
    return profile.shear(q=q, beta=(pa_deg + 90.0) * galsim.degrees)


def _deviate(rng: np.random.Generator) -> galsim.BaseDeviate:
    """A GalSim random deviate seeded from `rng` (never 0, which would mean "seed from time")."""
    return galsim.BaseDeviate(int(rng.integers(1, 2**31 - 1)))


# --- one builder per class -----------------------------------------------------------------


def _elliptical(rng: np.random.Generator) -> GalaxyModel:
    """Single red Sersic spheroid, n 3-5.5, nearly round."""
    mag_r, pa = _mag_r(rng), rng.uniform(0.0, 180.0)
    n, hlr = _sersic_n(rng, 3.0, 5.5), _half_light_radius(rng, mag_r, 1.8)
    e = rng.uniform(0.0, 0.3)
    q = (1.0 - e) / (1.0 + e)
    body = _orient(galsim.Sersic(n=n, half_light_radius=hlr), q, pa)
    colours = rng.uniform(0.8, 1.0), rng.uniform(0.42, 0.58)
    comp = Component(body, _mags(mag_r, *colours))
    return GalaxyModel("elliptical", (comp,), n, hlr, e, pa)


def _lenticular(rng: np.random.Generator) -> GalaxyModel:
    """Red de Vaucouleurs bulge (40-70% of the light) in a smooth, slightly bluer disk."""
    mag_r, pa = _mag_r(rng), rng.uniform(0.0, 180.0)
    hlr_disk = _half_light_radius(rng, mag_r, 2.4)
    hlr_bulge = hlr_disk * rng.uniform(0.3, 0.55)
    q_disk, q_bulge = rng.uniform(0.35, 0.9), rng.uniform(0.7, 1.0)
    bt = rng.uniform(0.4, 0.7)
    bulge = _orient(galsim.DeVaucouleurs(half_light_radius=hlr_bulge), q_bulge, pa)
    disk = _orient(galsim.Exponential(half_light_radius=hlr_disk), q_disk, pa)
    comps = (
        Component(bulge, _mags(_split(mag_r, bt), rng.uniform(0.8, 0.95), 0.5)),
        Component(disk, _mags(_split(mag_r, 1.0 - bt), rng.uniform(0.65, 0.8), 0.45)),
    )
    comps, bar, ring = _bar_and_ring(rng, comps, 1, mag_r, hlr_disk, q_disk, pa, (0.25, 0.3))
    if bt >= 0.5:
        return GalaxyModel(
            "lenticular", comps, 4.0, hlr_bulge, _ellipticity(q_bulge), pa, bar, ring
        )
    return GalaxyModel("lenticular", comps, 1.0, hlr_disk, _ellipticity(q_disk), pa, bar, ring)


def _arm_pattern(rng: np.random.Generator, hlr: float) -> galsim.GSObject:
    """Face-on two-armed logarithmic spiral traced by small Gaussians, unit flux.

    Only used as the distribution the arm knots are sampled from, so its cost (many
    components) is paid once per galaxy in photon shooting, not in every band's FFT.
    """
    pitch = np.tan(np.radians(rng.uniform(12.0, 25.0))) * rng.choice([-1.0, 1.0])
    r0, r1, per_arm = 0.35 * hlr, 2.0 * hlr, 12
    theta = np.linspace(0.0, np.log(r1 / r0) / abs(pitch), per_arm)
    blobs = []
    for arm_phase in rng.uniform(0.0, 2.0 * np.pi) + np.array([0.0, np.pi]):
        r = r0 * np.exp(np.abs(pitch) * theta)
        phi = arm_phase + np.sign(pitch) * theta
        # Exponential fall-off along the arm, like the disk the arms live in.
        weights = np.exp(-1.678 * r / hlr)
        for x, y, w, s in zip(
            r * np.cos(phi), r * np.sin(phi), weights, 0.1 + 0.08 * r, strict=True
        ):
            blobs.append(galsim.Gaussian(sigma=float(s), flux=float(w)).shift(x, y))
    return galsim.Sum(blobs).withFlux(1.0)


def _spiral_arms(rng: np.random.Generator, hlr: float, q: float, pa: float) -> galsim.GSObject:
    """Clumpy spiral arms of unit flux: star-forming knots scattered along the arm pattern.

    `galsim.RandomKnots` keeps its points in one C++ sum of delta functions, about twice as
    cheap per clump as a Python-level `galsim.Sum` of shifted Gaussians; the knots are
    oriented before being slightly smoothed, so the smoothing kernel can stay round.
    """
    knots = galsim.RandomKnots(
        int(rng.integers(30, 45)), profile=_arm_pattern(rng, hlr), rng=_deviate(rng)
    )
    return galsim.Convolve(_orient(knots, q, pa), galsim.Gaussian(sigma=0.15))


def _bar(rng: np.random.Generator, hlr: float, q: float, pa: float) -> galsim.GSObject:
    """A flat (n = 0.5), elongated bar of unit flux at any angle in the disk plane, then
    inclined with the disk (axis ratio ``q``, major axis ``pa``)."""
    length = hlr * rng.uniform(0.45, 0.9)
    bar = galsim.Sersic(n=0.5, half_light_radius=length).shear(
        q=rng.uniform(0.18, 0.35), beta=rng.uniform(0.0, 180.0) * galsim.degrees
    )
    return bar.shear(q=q, beta=(pa + 90.0) * galsim.degrees)


def _ring(rng: np.random.Generator, hlr: float, q: float, pa: float) -> galsim.GSObject:
    """A ring of unit flux: clumps on a circle of 0.7-1.8 half-light radii, inclined with
    the disk."""
    radius = hlr * rng.uniform(0.7, 1.8)
    n = 28
    phi = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False) + rng.uniform(0.0, 2.0 * np.pi)
    weights = rng.uniform(0.5, 1.5, n)
    width = radius * rng.uniform(0.08, 0.16)
    clumps = [
        galsim.Gaussian(sigma=float(width), flux=float(w)).shift(
            float(radius * np.cos(a)), float(radius * np.sin(a))
        )
        for a, w in zip(phi, weights, strict=True)
    ]
    return _orient(galsim.Sum(clumps).withFlux(1.0), q, pa)


def _bar_and_ring(rng, comps, disk: int, mag_r, hlr, q, pa, chances: tuple[float, float]):
    """Maybe add a bar and a ring (probabilities ``chances``), each carrying 8-20 % of the
    galaxy's r-band light, taken from ``comps[disk]`` (dimmed at its own colours, to no less
    than a fifth of its light); returns (components, bar, ring)."""
    bar, ring = bool(rng.uniform() < chances[0]), bool(rng.uniform() < chances[1])
    added, taken = [], 0.0
    if bar:
        f = rng.uniform(0.08, 0.2)
        added.append(Component(_bar(rng, hlr, q, pa), _mags(_split(mag_r, f), 0.85, 0.48)))
        taken += f
    if ring:
        f = rng.uniform(0.08, 0.2)
        colours = (rng.uniform(0.35, 0.8), rng.uniform(0.25, 0.45))  # blue or old, per ring
        added.append(Component(_ring(rng, hlr, q, pa), _mags(_split(mag_r, f), *colours)))
        taken += f
    if not added:
        return comps, bar, ring
    old = comps[disk]
    keep = max(0.2, 1.0 - taken * mag_to_nanomaggies(mag_r) / mag_to_nanomaggies(old.mags[1]))
    dimmed = Component(old.profile, tuple(float(m - 2.5 * np.log10(keep)) for m in old.mags))
    comps = (*comps[:disk], dimmed, *comps[disk + 1 :])
    return (*comps, *added), bar, ring


def _spiral(rng: np.random.Generator) -> GalaxyModel:
    """Blue exponential disk with a small red bulge, log-spiral arms and star-forming knots."""
    mag_r, pa = _mag_r(rng), rng.uniform(0.0, 180.0)
    hlr = _half_light_radius(rng, mag_r, 2.6, floor=1.0)
    q = rng.uniform(0.55, 1.0)  # fairly face-on, or the arms would not show
    f_bulge = rng.uniform(0.05, 0.2)
    f_arms = rng.uniform(0.25, 0.4)
    f_knots = rng.uniform(0.05, 0.1)
    f_disk = 1.0 - f_bulge - f_arms - f_knots
    knots = galsim.RandomKnots(int(rng.integers(10, 20)), half_light_radius=hlr, rng=_deviate(rng))
    disk_colours = rng.uniform(0.4, 0.65), rng.uniform(0.25, 0.45)
    comps = (
        Component(_orient(galsim.Exponential(half_light_radius=hlr), q, pa),
                  _mags(_split(mag_r, f_disk), *disk_colours)),
        Component(_spiral_arms(rng, hlr, q, pa),
                  _mags(_split(mag_r, f_arms), disk_colours[0] - 0.15, disk_colours[1] - 0.1)),
        Component(_orient(knots, q, pa), _mags(_split(mag_r, f_knots), 0.2, 0.1)),
        Component(_orient(galsim.DeVaucouleurs(half_light_radius=0.2 * hlr), 0.9, pa),
                  _mags(_split(mag_r, f_bulge), 0.85, 0.5)),
    )  # fmt: skip
    comps, bar, ring = _bar_and_ring(rng, comps, 0, mag_r, hlr, q, pa, (0.4, 0.25))
    return GalaxyModel("spiral", comps, 1.0, hlr, _ellipticity(q), pa, bar, ring)


def _edge_on(rng: np.random.Generator) -> GalaxyModel:
    """Thin exponential disk seen at 80-90 degrees inclination, reddened by its own dust."""
    mag_r, pa = _mag_r(rng), rng.uniform(0.0, 180.0)
    hlr = _half_light_radius(rng, mag_r, 2.6, floor=1.2)
    incl, h_over_r = rng.uniform(80.0, 90.0), rng.uniform(0.08, 0.12)
    disk = galsim.InclinedExponential(
        incl * galsim.degrees, half_light_radius=hlr, scale_h_over_r=h_over_r
    ).rotate((pa + 90.0) * galsim.degrees)
    # Projected axis ratio of a thick disk: the thin-disk cos(i) broadened by the scale height.
    cos_i = np.cos(np.radians(incl))
    q = float(np.hypot(cos_i, h_over_r * np.sin(np.radians(incl))))
    comp = Component(disk, _mags(mag_r, rng.uniform(0.6, 0.85), rng.uniform(0.4, 0.55)))
    return GalaxyModel("edge_on", (comp,), 1.0, hlr, _ellipticity(q), pa)


def _merger_member(rng: np.random.Generator, mag_r: float, hlr: float):
    """One galaxy of a merging pair: a disk or a spheroid with matching colour and shape."""
    if rng.uniform() < 0.5:  # blue star-forming disk
        n, q = 1.0, rng.uniform(0.4, 0.9)
        colours = rng.uniform(0.45, 0.75), rng.uniform(0.3, 0.45)
    else:  # red spheroid
        n, q = _sersic_n(rng, 2.5, 4.5), rng.uniform(0.7, 1.0)
        colours = rng.uniform(0.8, 1.0), 0.5
    pa = rng.uniform(0.0, 180.0)
    body = _orient(galsim.Sersic(n=n, half_light_radius=hlr), q, pa)
    return Component(body, _mags(mag_r, *colours)), n, q, pa


def _merger(rng: np.random.Generator) -> GalaxyModel:
    """Two galaxies 1-3 half-light radii apart; the brighter one is centred and catalogued."""
    mag_r = _mag_r(rng)
    hlr = _half_light_radius(rng, mag_r, 1.3)
    fainter = rng.uniform(0.3, 1.0)  # flux ratio secondary / primary
    primary, n, q, pa = _merger_member(rng, _split(mag_r, 1.0 / (1.0 + fainter)), hlr)
    second, *_ = _merger_member(
        rng, _split(mag_r, fainter / (1.0 + fainter)), hlr * rng.uniform(0.6, 1.1)
    )
    sep, angle = hlr * rng.uniform(1.0, 3.0), rng.uniform(0.0, 2.0 * np.pi)
    second = Component(second.profile.shift(sep * np.cos(angle), sep * np.sin(angle)), second.mags)
    return GalaxyModel("merger", (primary, second), n, hlr, _ellipticity(q), pa)


_BUILDERS: dict[str, Callable[[np.random.Generator], GalaxyModel]] = {
    "elliptical": _elliptical,
    "lenticular": _lenticular,
    "spiral": _spiral,
    "edge_on": _edge_on,
    "merger": _merger,
}
