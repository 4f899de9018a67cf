"""Image quality against a clean truth: PSNR and SSIM, per band, then averaged over bands.

SSIM is Wang et al. (2004): Gaussian window (sigma 1.5, truncated at 3.5 sigma), K1 = 0.01,
K2 = 0.03, population covariances, the mean over pixels at least the window's half-width
from the edge; it matches ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
use_sample_covariance=False, sigma=1.5)``. Both take the data range from the truth band
(max - min), so a band's score does not depend on its flux scale.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import gaussian_filter

SIGMA, TRUNCATE, K1, K2 = 1.5, 3.5, 0.01, 0.03


def _range(truth: np.ndarray, data_range: float | None) -> float:
    value = float(np.ptp(truth)) if data_range is None else float(data_range)
    if not value > 0:
        raise ValueError("the truth image is constant: give data_range")
    return value


def psnr(truth: np.ndarray, estimate: np.ndarray, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(range^2 / MSE)`` (inf when equal)."""
    truth, estimate = np.asarray(truth, np.float64), np.asarray(estimate, np.float64)
    mse = float(np.mean((truth - estimate) ** 2))
    peak = _range(truth, data_range)
    return math.inf if mse == 0 else 10.0 * math.log10(peak**2 / mse)


def ssim(truth: np.ndarray, estimate: np.ndarray, data_range: float | None = None) -> float:
    """Structural similarity of two 2-D images (1 when equal)."""
    x, y = np.asarray(truth, np.float64), np.asarray(estimate, np.float64)
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"ssim takes two 2-D images of one shape, got {x.shape} and {y.shape}")
    c1, c2 = (K1 * _range(x, data_range)) ** 2, (K2 * _range(x, data_range)) ** 2

    def blur(a):
        return gaussian_filter(a, SIGMA, truncate=TRUNCATE, mode="reflect")

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    index = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    pad = int(TRUNCATE * SIGMA + 0.5)
    return float(index[pad:-pad, pad:-pad].mean())


def band_scores(truth: np.ndarray, estimate: np.ndarray) -> tuple[float, float]:
    """(PSNR, SSIM) of a (bands, H, W) estimate, each the mean over bands."""
    pairs = list(zip(truth, estimate, strict=True))
    return (
        float(np.mean([psnr(t, e) for t, e in pairs])),
        float(np.mean([ssim(t, e) for t, e in pairs])),
    )
