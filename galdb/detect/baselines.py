"""Classical detection baselines on the same fields: SEP and photutils segmentation.

Both detect on one image in units of the noise: each band minus its background, divided by
its background RMS, summed over bands and divided by sqrt(number of bands) (a chi-like
detection image, as multi-band pipelines use). They extract at a low threshold and score
each source by its peak significance; the score cut that maximises F1 on the training
fields is then chosen exactly as for the network (:func:`galdb.detect.evaluate.best_threshold`),
so every method gets the same tuning. Rows are those of :func:`galdb.detect.model.decode`:
``(x, y, radius_px, score, kind_index)``, kind -1 (these methods do not classify).
"""

from __future__ import annotations

import numpy as np

EXTRACT_SIGMA = 1.5  # SExtractor's default DETECT_THRESH
MIN_AREA = 5  # SExtractor's default DETECT_MINAREA


def detection_image(pixels: np.ndarray) -> np.ndarray:
    """``(bands, H, W)`` -> the chi-like ``(H, W)`` image described in the module docstring."""
    import sep

    planes = []
    for plane in np.asarray(pixels, dtype=np.float64):
        plane = np.ascontiguousarray(np.nan_to_num(plane))
        background = sep.Background(plane)
        planes.append((plane - background.back()) / max(background.globalrms, 1e-30))
    return (np.sum(planes, axis=0) / np.sqrt(len(planes))).astype(np.float64)


def _rows(x, y, radius, score) -> np.ndarray:
    n = len(x)
    if not n:
        return np.zeros((0, 5))
    return np.column_stack([x, y, radius, score, np.full(n, -1.0)]).astype(np.float64)


def sep_detect(pixels: np.ndarray, sigma: float = EXTRACT_SIGMA) -> np.ndarray:
    """SEP (SExtractor's algorithm: filtered threshold, deblending) on the detection image."""
    import sep

    image = detection_image(pixels)
    objects = sep.extract(image, sigma, err=1.0, minarea=MIN_AREA)
    radius = np.sqrt(objects["a"] * objects["b"])
    return _rows(objects["x"], objects["y"], radius, objects["peak"])


def photutils_detect(pixels: np.ndarray, sigma: float = EXTRACT_SIGMA) -> np.ndarray:
    """photutils segmentation: Gaussian-filtered image, detect_sources, deblend_sources,
    SourceCatalog centroids."""
    from astropy.convolution import Gaussian2DKernel, convolve
    from photutils.segmentation import SourceCatalog, deblend_sources, detect_sources

    image = detection_image(pixels)
    kernel = Gaussian2DKernel(1.5, x_size=7, y_size=7)
    kernel.normalize()
    smoothed = convolve(image, kernel)
    segments = detect_sources(smoothed, sigma, n_pixels=MIN_AREA)
    if segments is None:
        return _rows([], [], [], [])
    segments = deblend_sources(smoothed, segments, n_pixels=MIN_AREA, progress_bar=False)
    catalog = SourceCatalog(image, segments, convolved_data=smoothed)
    x, y = np.asarray(catalog.x_centroid), np.asarray(catalog.y_centroid)
    radius = np.sqrt(np.asarray(catalog.area.value) / np.pi)
    peak = np.asarray(catalog.max_value)
    good = np.isfinite(x) & np.isfinite(y)
    return _rows(x[good], y[good], radius[good], peak[good])
