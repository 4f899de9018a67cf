"""Restoration benchmark: a network and the classical baselines on the same held-out pairs.

Every method restores the test pairs' degraded images; each restored image is scored against
its clean truth by PSNR and SSIM (per band, mean over bands), in flux and in the unclipped
asinh stretch of the default preprocessing (what a person looking at the image sees: faint
outskirts count there as much as the core). The baselines' parameters are tuned on training
pairs, never on the test pairs.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from galdb.lvm.preprocess import Preprocessing, stretch_flux
from galdb.restore import baselines
from galdb.restore.metrics import band_scores
from galdb.restore.network import RestorationNet, restore
from galdb.restore.pairs import Pairs

SCORES = ("psnr", "ssim", "psnr_asinh", "ssim_asinh")
CSV_COLUMNS = ("method", "source_id", "morph_class", *SCORES)


@dataclass(frozen=True)
class MethodResult:
    """One method on the test pairs: per-image scores and the time it took."""

    method: str
    scores: np.ndarray  # (N, len(SCORES))
    seconds: float

    def mean(self, score: str) -> float:
        return float(self.scores[:, SCORES.index(score)].mean())


def image_scores(clean: np.ndarray, restored: np.ndarray, bands: list[str]) -> list[float]:
    """PSNR and SSIM in flux, then in the asinh stretch, of one (bands, H, W) image."""
    prep = Preprocessing(channels=tuple(bands))
    flux = band_scores(clean, restored)
    asinh = band_scores(*(stretch_flux(x, bands, prep, clip=False) for x in (clean, restored)))
    return [*flux, *asinh]


def network_restorer(net: RestorationNet) -> baselines.Restorer:
    return lambda pairs: restore(net, pairs.degraded, pairs.bands)


def tuned_baselines(tune_pairs: Pairs) -> dict[str, baselines.Restorer]:
    """No-op, Gaussian smoothing and Wiener filter, their parameters chosen on ``tune_pairs``."""
    sigma, _ = baselines.tune(baselines.gaussian, baselines.SIGMAS, tune_pairs)
    k, _ = baselines.tune(baselines.wiener, baselines.WIENER_K, tune_pairs)
    return {
        "no-op": baselines.noop,
        f"gaussian(sigma={sigma:g}px)": baselines.gaussian(sigma),
        f"wiener(k={k:.3g})": baselines.wiener(k),
    }


def evaluate(test: Pairs, methods: dict[str, Callable[[Pairs], np.ndarray]]) -> list[MethodResult]:
    """Run and score each method on the test pairs."""
    results = []
    for name, method in methods.items():
        started = time.perf_counter()
        restored = method(test)
        seconds = time.perf_counter() - started
        scores = np.array(
            [image_scores(c, r, test.bands) for c, r in zip(test.clean, restored, strict=True)]
        )
        results.append(MethodResult(name, scores, seconds))
    return results


def write_csv(path: Path, test: Pairs, results: list[MethodResult]) -> None:
    """One row per method and test image."""
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for result in results:
            for row, scores in zip(test.rows, result.scores, strict=True):
                writer.writerow(
                    [result.method, row["source_id"], row.get("morph_class", "")]
                    + [f"{s:.4f}" for s in scores]
                )


def summary_rows(results: list[MethodResult], n: int) -> list[tuple]:
    """(method, mean of each score, ms per cutout) per method."""
    return [
        (r.method, *(f"{r.mean(s):.3f}" for s in SCORES), f"{1000 * r.seconds / n:.2f}")
        for r in results
    ]


SUMMARY_COLUMNS = ("method", *SCORES, "ms/cutout")
