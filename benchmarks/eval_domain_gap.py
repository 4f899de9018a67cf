"""How simulated FITS cutouts and real survey JPEGs look after galdb's preprocessing.

For ``--n`` images of each source, after ``to_unit`` + ``crop_resize`` at the default encoder's
preprocessing (64 px, centre crop 0.6), per channel [R, G, B] = [z, r, g]: the mean, the median
sky (6-px border) and its pixel noise, the median centre (8 × 8 px), the share of saturated
pixels and the median share of pixels above 0.2 (how much of the frame the galaxy fills).
Simulations come from ``galdb simulate`` (``--size`` px, seed 7) in a temporary directory; real
images from ../shared/data/real (GZ2 and GZ1: SDSS JPEGs; rings: DESI Legacy Surveys JPEGs;
DR9 FITS: Legacy Surveys flux cutouts).

    python benchmarks/eval_domain_gap.py --n 100 --size 96
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from galdb.lvm.pixels import PixelRef, read_pixels
from galdb.lvm.preprocess import Preprocessing, crop_resize, to_unit
from galdb.sim import simulate_release

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Figures, machine, parser  # noqa: E402

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
PREP = Preprocessing(input_size=64, crop_fraction=0.6)


def looks(files: list[Path], bands: tuple[str, ...]) -> dict:
    x = np.stack(
        [
            crop_resize(
                torch.from_numpy(to_unit(read_pixels(PixelRef(str(f), bands=bands)), bands, PREP)),
                PREP,
            ).numpy()
            for f in files
        ]
    )
    n = len(x)
    border = np.concatenate([x[:, :, :6].reshape(n, 3, -1), x[:, :, -6:].reshape(n, 3, -1)], 2)
    centre = x[:, :, 28:36, 28:36].reshape(n, 3, -1).mean(2)
    return {
        "n": n,
        "mean": x.mean((0, 2, 3)),
        "sky": np.median(border, (0, 2)),
        "sky_noise": border.std(2).mean(0),
        "centre": np.median(centre, 0),
        "saturated": float((x > 0.98).mean()),
        "area": float(np.median((x.mean(1) > 0.2).mean((1, 2)))),
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=96, help="simulated cutout side, px")
    p.set_defaults(n=100)
    args = p.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        simulate_release(tmp, args.n, 7, size=args.size)
        sims = sorted(Path(tmp, "cutouts").glob("*.fits"))
        rows = {f"simulated ({args.size} px)": looks(sims, ("g", "r", "z"))}
    sources = {
        "GZ2 (SDSS JPEG)": ("gz2_kaggle_spiral_binary/images", "*.jpg", ()),
        "GZ1 (SDSS JPEG)": ("gz1_sdss_6class/images", "*", ()),
        "rings (DECaLS JPEG)": ("zoobot_gzdecals_rings/images", "*", ()),
        "DR9 FITS": ("decals_dr9_grz_fits_lvm/fits", "*.fits", ("g", "r", "z")),
    }
    for name, (folder, pattern, bands) in sources.items():
        files = sorted((REAL / folder).glob(pattern))[: args.n]
        if files:
            rows[name] = looks(files, bands)
    print("| source | n | mean [R,G,B] | sky | sky noise | centre | saturated | area > 0.2 |")
    print("|---|---|---|---|---|---|---|---|")
    figures = Figures("eval_domain_gap.py")
    for name, r in rows.items():

        def rgb(v):
            return "/".join(f"{c:.3f}" for c in v)

        print(
            f"| {name} | {r['n']} | {rgb(r['mean'])} | {rgb(r['sky'])} | {rgb(r['sky_noise'])} "
            f"| {rgb(r['centre'])} | {r['saturated']:.3f} | {r['area']:.3f} |"
        )
        figures.add(f"{name} median sky (G)", float(r["sky"][1]), "unit")
    figures.write(args.json)


if __name__ == "__main__":
    main()
