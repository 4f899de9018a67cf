"""HDF5 files in the layouts galdb ingests, with made-up pixels and catalog columns."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def write_ssl_legacysurvey(path: Path, n: int, size: int = 32, seed: int = 0) -> Path:
    """Stein et al. layout: ``images`` (N, 3, H, W) float32 g,r,z flux; ra, dec, catalog."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as h5:
        h5["images"] = rng.normal(0, 0.01, (n, 3, size, size)).astype(np.float32)
        h5["ra"] = rng.uniform(0, 360, n)
        h5["dec"] = rng.uniform(-30, 30, n)
        h5["z_phot_median"] = rng.gamma(2.0, 0.1, n).astype(np.float32)
        h5["brickid"] = rng.integers(100000, 600000, n)
        h5["objid"] = np.arange(n)
    return path


def write_galaxy10(path: Path, n: int, size: int = 32, seed: int = 0) -> Path:
    """Galaxy10 DECaLS layout: ``images`` (N, H, W, 3) uint8; ans, ra, dec, redshift."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as h5:
        h5["images"] = rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8)
        h5["ans"] = rng.integers(0, 10, n).astype(np.uint8)
        h5["ra"] = rng.uniform(0, 360, n)
        h5["dec"] = rng.uniform(-10, 60, n)
        h5["redshift"] = rng.uniform(0, 0.3, n)
        h5["pxscale"] = np.full(n, 0.262)
    return path
