"""Random sky positions (uniform on the sphere or clustered) and catalogs built from them."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def uniform_sphere(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` positions uniform on the whole sky: (ra, dec) in degrees."""
    ra = rng.uniform(0.0, 360.0, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    return ra, dec


def clustered(
    n: int,
    rng: np.random.Generator,
    *,
    n_clusters: int = 2000,
    spread_deg: float = 0.05,
    background: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Positions with galaxy-like clustering: a uniform background plus Gaussian clumps."""
    n_bg = int(n * background)
    ra_bg, dec_bg = uniform_sphere(n_bg, rng)
    centres_ra, centres_dec = uniform_sphere(n_clusters, rng)
    pick = rng.integers(0, n_clusters, n - n_bg)
    dec_c = np.clip(centres_dec[pick] + rng.normal(0, spread_deg, pick.size), -90, 90)
    cos_dec = np.maximum(np.cos(np.radians(dec_c)), 1e-3)
    ra_c = (centres_ra[pick] + rng.normal(0, spread_deg, pick.size) / cos_dec) % 360.0
    return np.concatenate([ra_bg, ra_c]), np.concatenate([dec_bg, dec_c])


def write_catalog_csv(path: Path, n: int, seed: int = 0, *, chunk: int = 100_000) -> Path:
    """A catalog of ``n`` galaxies (id, ra, dec, mag_r, redshift, morph) written in chunks."""
    rng = np.random.default_rng(seed)
    morphs = np.array(["elliptical", "spiral", "edge_on", "merger"])
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["source_id", "ra", "dec", "mag_r", "redshift", "morph"])
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            ra, dec = clustered(m, rng, n_clusters=max(1, m // 50))
            mag = rng.uniform(16, 22, m).round(3)
            z = rng.gamma(2.0, 0.1, m).round(4)
            morph = morphs[rng.integers(0, morphs.size, m)]
            for i in range(m):
                writer.writerow(
                    [f"G{start + i:09d}", f"{ra[i]:.7f}", f"{dec[i]:.7f}", mag[i], z[i], morph[i]]
                )
    return path
