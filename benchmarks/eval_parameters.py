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
3. direct fit (``galdb.eval.sersic_fit``): astropy ``Sersic2D`` convolved with each cutout's
   PSF, least squares on the r band, per test galaxy (the first ``--n-fit``).

Printed: R² per parameter and the time per galaxy of each (heads: inference only; their
training time is printed apart). The truth's half-light radius is circularised except for
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

from galdb.eval.feature_head import FeatureMaps, fit_feature_head  # noqa: E402
from galdb.eval.sersic_fit import fit_sersic  # noqa: E402
from galdb.heads.regress import RegressionHead  # noqa: E402
from galdb.lvm.preprocess import to_tensor  # noqa: E402
from galdb.lvm.specs import load_model  # noqa: E402
from galdb.sim import simulate_galaxy  # noqa: E402
from galdb.sim.morphology import BANDS  # noqa: E402

TARGETS = ("half_light_radius_arcsec", "sersic_n", "ellipticity")
GOALS = {"half_light_radius_arcsec": 0.95, "sersic_n": 0.85}
EDGE_ON_Q = 0.35


def r2(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(1 - np.sum((truth - predicted) ** 2) / np.sum((truth - truth.mean()) ** 2))


def galaxies(seed: int, n: int):
    """(images (N, 3, 64, 64), truth (N, 3), r-band PSF FWHM (N,)) of simulated galaxies."""
    images, truth, fwhm = [], [], []
    for i in range(n):
        g = simulate_galaxy(seed, i, size=64)
        images.append(g.image)
        truth.append([getattr(g.model, t) for t in TARGETS])
        fwhm.append(g.psf_fwhm[1])
    return np.stack(images), np.array(truth, dtype=np.float64), np.array(fwhm)


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
    p.add_argument("--n-fit", type=int, default=600, help="test galaxies fitted directly")
    p.add_argument("--epochs", type=int, default=80, help="feature head epochs")
    p.add_argument(
        "--crop", type=float, default=1.0,
        help="centre-crop fraction of the feature head's input (the model's own: pooled lines)",
    )  # fmt: skip
    args = p.parse_args()
    print(command_line())
    log(machine())
    log(f"simulating {args.n_test} test (seed 7) and {args.n_train} training (seed 8) galaxies")
    x_test, y_test, fwhm_test = galaxies(7, args.n_test)
    x_train, y_train, _ = galaxies(8, args.n_train)
    loaded = load_model(args.model)
    rows = []

    log("pooled embeddings")
    started = time.perf_counter()
    e_test = pooled(loaded, x_test)
    embed_s = (time.perf_counter() - started) / len(x_test)
    e_train = pooled(loaded, x_train)
    cv = [RegressionHead().fit(e_test, y_test[:, t])["cv_r2"] for t in range(len(TARGETS))]
    rows.append((f"pooled ridge, 5-fold CV on the {args.n_test}", *cv, 1000 * embed_s))
    ridge = []
    for t in range(len(TARGETS)):
        head = RegressionHead()
        head.fit(e_train, y_train[:, t], cross_validate=False)
        ridge.append(r2(y_test[:, t], head.predict(e_test)[0]))
    rows.append((f"pooled ridge, trained on {args.n_train}", *ridge, 1000 * embed_s))

    log("feature maps")
    maps = FeatureMaps(load_model(args.model, crop_fraction=args.crop))
    m_train = maps(x_train, list(BANDS))
    started = time.perf_counter()
    head = fit_feature_head(m_train, to_space(y_train), epochs=args.epochs)
    train_s = time.perf_counter() - started
    log(f"feature head trained in {train_s:.0f} s")
    started = time.perf_counter()
    predicted = from_space(head.predict(maps(x_test, list(BANDS))))
    head_s = (time.perf_counter() - started) / len(x_test)
    fmap = [r2(y_test[:, t], predicted[:, t]) for t in range(len(TARGETS))]
    rows.append(
        (f"feature-map head (crop {args.crop:g}), trained on {args.n_train}", *fmap, 1000 * head_s)
    )

    n_fit = min(args.n_fit, args.n_test)
    log(f"direct Sersic fits of {n_fit} galaxies")
    fits_, seconds, failed = [], [], 0
    for i in range(n_fit):
        f = fit_sersic(x_test[i, 1], fwhm_test[i])
        q = (1 - f.ellipticity) / (1 + f.ellipticity)
        radius = f.half_light_radius_arcsec / (math.sqrt(q) if q < EDGE_ON_Q else 1.0)
        fits_.append([radius, f.sersic_n, f.ellipticity])
        seconds.append(f.seconds)
        failed += not f.success
        if (i + 1) % 100 == 0:
            log(f"fitted {i + 1}")
    fits_ = np.array(fits_)
    direct = [r2(y_test[:n_fit, t], fits_[:, t]) for t in range(len(TARGETS))]
    rows.append((f"direct Sersic2D*PSF fit ({n_fit}, r band)", *direct, 1000 * np.mean(seconds)))
    # the heads on the same galaxies as the fit, for a like-for-like line
    same = [r2(y_test[:n_fit, t], predicted[:n_fit, t]) for t in range(len(TARGETS))]
    rows.append((f"feature-map head on those {n_fit}", *same, 1000 * head_s))

    print_table(
        f"R² against the simulator's truth; {args.model}; test seed 7 (64 px)",
        ["method", "R² r_half", "R² Sersic n", "R² ellipticity", "ms/galaxy"],
        [(name, *(round(v, 3) for v in vals), ms) for name, *vals, ms in rows],
    )
    print(f"\nfit: {failed} of {n_fit} did not converge; median {np.median(seconds):.3f} s/galaxy")
    print(f"feature head: training {train_s:.0f} s on {args.n_train} galaxies (frozen encoder)")
    for target, goal in GOALS.items():
        t = TARGETS.index(target)
        print(f"feature-map head R² {target} {fmap[t]:.3f} >= {goal}: {verdict(fmap[t] >= goal)}")


if __name__ == "__main__":
    main()
