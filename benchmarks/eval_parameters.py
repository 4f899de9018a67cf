"""Structural parameters: LVM heads against a direct PSF-convolved Sersic fit, per galaxy.

On the simulator's galaxies (truth: half-light radius, Sersic index, ellipticity of the
dominant component), in one run:

1. pooled-embedding ridge head (``galdb head train``'s regression head): 5-fold CV R² on the
   ``--n-test`` test galaxies (seed 7, 64 px, as ``eval_fewshot.py --sim 600`` measures
   it), and trained on the ``--n-train`` training galaxies (seed 8), scored on the test set;
2. feature-map head (``galdb.eval.feature_head``): the frozen backbone's stride-8/16 maps
   (input centre-cropped to ``--crop`` of the side, default the whole cutout: a big galaxy
   overflows the 0.6 crop the SSL checkpoint was trained with), a small conv + MLP head
   trained on the training galaxies' truth, scored on the test set;
3. fine-tuned head (``fit_tuned_head``): the same head with the encoder trained too, on the
   unclipped stretch, ``--tune-epochs`` epochs with random 90° turns and flips;
4. direct fit (``galdb.eval.sersic_fit``): astropy ``Sersic2D`` convolved with each cutout's
   PSF, least squares on the r band, per test galaxy.

``--methods`` picks which run. Printed: R² per parameter and the time per galaxy of each
(heads: inference only; their training time is logged apart), then the median relative
error of radius and index per class. The truth's half-light radius is circularised except for
edge-on disks, where it is the face-on (major-axis) radius; the fit reports the major axis
when its axis ratio is below ``EDGE_ON_Q`` and the circularised radius otherwise.

    python benchmarks/eval_parameters.py --model checkpoint:/work/galdb-eval/ssl-gz2-r18-64.pt \
        --n-train 3000 --n-test 600
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import command_line, log, machine, print_table, verdict  # noqa: E402

from galdb.eval.feature_head import FeatureMaps, fit_feature_head, fit_tuned_head  # noqa: E402
from galdb.eval.sersic_fit import fit_sersic  # noqa: E402
from galdb.heads.regress import RegressionHead  # noqa: E402
from galdb.lvm.preprocess import to_tensor  # noqa: E402
from galdb.lvm.specs import load_model  # noqa: E402
from galdb.sim import simulate_galaxy  # noqa: E402
from galdb.sim.morphology import BANDS, CLASSES  # noqa: E402

TARGETS = ("half_light_radius_arcsec", "sersic_n", "ellipticity")
GOALS = {"half_light_radius_arcsec": 0.95, "sersic_n": 0.85}
EDGE_ON_Q = 0.35


def r2(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(1 - np.sum((truth - predicted) ** 2) / np.sum((truth - truth.mean()) ** 2))


def galaxies(seed: int, n: int):
    """(images (N, 3, 64, 64), truth (N, 3), r-band PSF FWHM (N,), class (N,)) of simulated
    galaxies."""
    images, truth, fwhm, classes = [], [], [], []
    for i in range(n):
        g = simulate_galaxy(seed, i, size=64)
        images.append(g.image)
        truth.append([getattr(g.model, t) for t in TARGETS])
        fwhm.append(g.psf_fwhm[1])
        classes.append(g.model.morph_class)
    return np.stack(images), np.array(truth, dtype=np.float64), np.array(fwhm), np.array(classes)


@torch.inference_mode()
def pooled(loaded, images: np.ndarray) -> np.ndarray:
    bands, out = list(BANDS), []
    for start in range(0, len(images), 64):
        x = torch.stack([to_tensor(im, bands, loaded.preprocessing) for im in images[start:][:64]])
        out.append(loaded.model(x).numpy())
    return np.concatenate(out)


def to_space(truth: np.ndarray) -> np.ndarray:
    """Targets as the feature head learns them: log radius, log index, ellipticity."""
    return np.column_stack([np.log(truth[:, 0]), np.log(truth[:, 1]), truth[:, 2]])


def from_space(y: np.ndarray) -> np.ndarray:
    return np.column_stack([np.exp(y[:, 0]), np.exp(y[:, 1]), y[:, 2]])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="timm:resnet18")
    p.add_argument("--n-train", type=int, default=3000)
    p.add_argument("--n-test", type=int, default=600)
    p.add_argument("--methods", default="pooled,frozen,tuned,fit", help="which to run")
    p.add_argument("--tune-epochs", type=int, default=8, help="fine-tuned head epochs")
    p.add_argument("--epochs", type=int, default=80, help="feature head epochs")
    p.add_argument(
        "--crop", type=float, default=1.0,
        help="centre-crop fraction of the feature head's input (the model's own: pooled lines)",
    )  # fmt: skip
    args = p.parse_args()
    print(command_line())
    log(machine())
    log(f"simulating {args.n_test} test (seed 7) and {args.n_train} training (seed 8) galaxies")
    x_test, y_test, fwhm_test, classes = galaxies(7, args.n_test)
    x_train, y_train, _, _ = galaxies(8, args.n_train)
    loaded = load_model(args.model)
    methods = set(args.methods.split(","))
    rows, per_class = [], {}
    if "pooled" in methods:
        rows += pooled_rows(loaded, x_train, y_train, x_test, y_test, args)
    if "frozen" in methods:
        maps = FeatureMaps(load_model(args.model, crop_fraction=args.crop))
        m_train = maps(x_train, list(BANDS))
        started = time.perf_counter()
        head = fit_feature_head(m_train, to_space(y_train), epochs=args.epochs)
        log(f"frozen feature head trained in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        predicted = from_space(head.predict(maps(x_test, list(BANDS))))
        ms = 1000 * (time.perf_counter() - started) / len(x_test)
        name = f"frozen maps + head (crop {args.crop:g}), trained on {args.n_train}"
        rows.append((name, *scores(y_test, predicted), ms))
        per_class["frozen-map head"] = predicted
    if "tuned" in methods:
        started = time.perf_counter()
        tuned = fit_tuned_head(
            load_model(args.model, crop_fraction=args.crop), x_train, list(BANDS),
            to_space(y_train), epochs=args.tune_epochs,
        )  # fmt: skip
        log(f"fine-tuned head trained in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        predicted = from_space(tuned.predict(x_test, list(BANDS)))
        ms = 1000 * (time.perf_counter() - started) / len(x_test)
        name = f"fine-tuned encoder + head ({args.tune_epochs} ep), trained on {args.n_train}"
        rows.append((name, *scores(y_test, predicted), ms))
        per_class["fine-tuned head"] = predicted
    if "fit" in methods:
        fitted, ms = direct_fits(x_test, fwhm_test)
        rows.append(("direct Sersic2D*PSF fit (r band)", *scores(y_test, fitted), ms))
        per_class["direct fit"] = fitted
    print_table(
        f"R² against the simulator's truth on {args.n_test} test galaxies (seed 7, 64 px); "
        f"{args.model}",
        ["method", "R² r_half", "R² Sersic n", "R² ellipticity", "ms/galaxy"],
        [(name, *(round(v, 3) for v in vals), ms) for name, *vals, ms in rows],
    )
    print_table(
        "median |relative error| of r_half and Sersic n, by class",
        ["method", *(f"{c} r / n" for c in CLASSES)],
        [
            (name, *(_class_errors(y_test, p, classes == c) for c in CLASSES))
            for name, p in per_class.items()
        ],
    )
    for target, goal in GOALS.items():
        t = TARGETS.index(target)
        for name, *vals, _ in rows:
            print(f"R² {target} >= {goal}: {verdict(vals[t] >= goal)} ({vals[t]:.3f}, {name})")


def scores(truth: np.ndarray, predicted: np.ndarray) -> list[float]:
    return [r2(truth[:, t], predicted[:, t]) for t in range(len(TARGETS))]


def _class_errors(truth, predicted, keep) -> str:
    rel = np.abs(predicted[keep, :2] - truth[keep, :2]) / truth[keep, :2]
    return " / ".join(f"{v:.2f}" for v in np.median(rel, axis=0))


def direct_fits(x_test: np.ndarray, fwhm: np.ndarray) -> tuple[np.ndarray, float]:
    """The fit's (N, 3) parameters on the r band, and its mean ms per galaxy."""
    log(f"direct Sersic fits of {len(x_test)} galaxies")
    fitted, seconds, failed = [], [], 0
    for i in range(len(x_test)):
        f = fit_sersic(x_test[i, 1], fwhm[i])
        q = (1 - f.ellipticity) / (1 + f.ellipticity)
        radius = f.half_light_radius_arcsec / (math.sqrt(q) if q < EDGE_ON_Q else 1.0)
        fitted.append([radius, f.sersic_n, f.ellipticity])
        seconds.append(f.seconds)
        failed += not f.success
    log(f"fits: {failed} did not converge; median {np.median(seconds):.3f} s/galaxy")
    return np.array(fitted), 1000 * float(np.mean(seconds))


def pooled_rows(loaded, x_train, y_train, x_test, y_test, args) -> list[tuple]:
    """The pooled-embedding ridge head: CV on the test set, and trained on the training set."""
    log("pooled embeddings")
    started = time.perf_counter()
    e_test = pooled(loaded, x_test)
    ms = 1000 * (time.perf_counter() - started) / len(x_test)
    e_train = pooled(loaded, x_train)
    cv = [RegressionHead().fit(e_test, y_test[:, t])["cv_r2"] for t in range(len(TARGETS))]
    ridge = []
    for t in range(len(TARGETS)):
        head = RegressionHead()
        head.fit(e_train, y_train[:, t], cross_validate=False)
        ridge.append(r2(y_test[:, t], head.predict(e_test)[0]))
    return [
        (f"pooled ridge, 5-fold CV on the {args.n_test}", *cv, ms),
        (f"pooled ridge, trained on {args.n_train}", *ridge, ms),
    ]


if __name__ == "__main__":
    main()
