"""Classical restorations the network is measured against: no-op, Gaussian smoothing, Wiener.

Each is a function of a :class:`~galdb.restore.pairs.Pairs` set (degraded images plus their
PSFs) returning (N, bands, H, W) flux. The free parameter of each (the Gaussian's sigma, the
Wiener filter's noise-to-signal scale) is chosen on training pairs by :func:`tune`, the
value with the best mean PSNR, so the baselines are as good as the data lets them be.

The Wiener filter deconvolves each band from its own Moffat PSF (FWHM and beta from the
cutout's header) to the clean images' Gaussian PSF, in Fourier space:
``R = T H* / (|H|^2 + K)``, ``H`` and ``T`` the transfer functions of the two PSFs (pixel
included), ``K = k * n sigma^2 / F^2`` the noise-to-signal power ratio for an image of ``n``
pixels, sky noise ``sigma`` (robust, from the border pixels) and total flux ``F``.
"""

from __future__ import annotations

from collections.abc import Callable

import galsim
import numpy as np
from scipy.ndimage import gaussian_filter

from galdb.restore.metrics import band_scores
from galdb.restore.pairs import Pairs
from galdb.sim.simulate import PIXEL_SCALE, moffat_psf

Restorer = Callable[[Pairs], np.ndarray]
SIGMAS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)  # pixels
WIENER_K = tuple(np.logspace(-2, 3, 11))
BORDER = 4  # pixels of each edge that estimate the sky noise


def noop(pairs: Pairs) -> np.ndarray:
    """The degraded images themselves."""
    return pairs.degraded.copy()


def gaussian(sigma: float) -> Restorer:
    """Gaussian smoothing of every band by ``sigma`` pixels."""

    def run(pairs: Pairs) -> np.ndarray:
        return gaussian_filter(pairs.degraded, (0, 0, sigma, sigma), mode="reflect")

    return run


def wiener(k: float) -> Restorer:
    """Wiener deconvolution to the clean PSF with noise-to-signal scale ``k``."""

    def run(pairs: Pairs) -> np.ndarray:
        out = np.empty_like(pairs.degraded)
        for i, image in enumerate(pairs.degraded):
            for b, band in enumerate(image):
                out[i, b] = _wiener_band(band, pairs.psf_fwhm[i, b], pairs.clean_fwhm[i], k)
        return out

    return run


def _otf(psf: galsim.GSObject, shape: tuple[int, int]) -> np.ndarray:
    """Transfer function of a PSF (with the pixel) on an image of this shape, centred at 0."""
    h, w = shape
    image = psf.drawImage(nx=w, ny=h, scale=PIXEL_SCALE, method="auto").array
    # galsim centres an even-sided image at the corner pixel (h/2, w/2): move it to (0, 0)
    return np.fft.rfft2(np.roll(image, (-(h // 2), -(w // 2)), axis=(0, 1)))


def sky_sigma(band: np.ndarray) -> float:
    """Robust sky noise of an image from its border pixels (1.4826 MAD)."""
    edge = np.concatenate(
        [band[:BORDER].ravel(), band[-BORDER:].ravel(), band[:, :BORDER].ravel(),
         band[:, -BORDER:].ravel()]
    )  # fmt: skip
    return float(1.4826 * np.median(np.abs(edge - np.median(edge))))


def _wiener_band(band: np.ndarray, fwhm: float, clean_fwhm: float, k: float) -> np.ndarray:
    h_otf = _otf(moffat_psf(fwhm), band.shape)
    t_otf = _otf(galsim.Gaussian(fwhm=clean_fwhm), band.shape)
    flux = max(float(band.sum()), 1e-12)
    ratio = k * band.size * sky_sigma(band) ** 2 / flux**2
    spectrum = np.fft.rfft2(band) * t_otf * np.conj(h_otf) / (np.abs(h_otf) ** 2 + ratio)
    return np.fft.irfft2(spectrum, s=band.shape).astype(np.float32)


def mean_scores(pairs: Pairs, restored: np.ndarray) -> tuple[float, float]:
    """Mean (PSNR, SSIM) of restored images against the clean ones, over the set."""
    scores = np.array([band_scores(c, r) for c, r in zip(pairs.clean, restored, strict=True)])
    return float(scores[:, 0].mean()), float(scores[:, 1].mean())


def tune(make: Callable[[float], Restorer], grid, pairs: Pairs) -> tuple[float, float]:
    """(best parameter, its mean PSNR) of ``make(parameter)`` on ``pairs``."""
    best = max(((mean_scores(pairs, make(p)(pairs))[0], p) for p in grid), key=lambda t: t[0])
    return float(best[1]), best[0]
