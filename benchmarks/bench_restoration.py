"""Restoration throughput against the bare forward pass of the same backbone.

What is measured, in one run, for ``--model`` (default ``timm:resnet18``) on 64-pixel g,r,z
cutouts, batch size ``--batch``, ``torch.get_num_threads()`` threads:

1. bare backbone: ``model(batch)`` of the LVM (pooled embedding) on pre-built tensors,
   under ``torch.inference_mode`` (the ceiling any use of the backbone has);
2. restoration network in memory: ``galdb.restore.network.restore`` on flux arrays
   (stretch, encoder + decoder at full resolution, inverse stretch);
3. ``galdb restore run`` end to end (``run_restoration``): read galaxies from PostgreSQL,
   read the FITS cutouts, restore, write one FITS file per galaxy, COPY the paths, commit.

Printed: cutouts/s of each and the ratios to the bare forward pass.

    python benchmarks/bench_restoration.py --n 512 --model timm:resnet18
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import Figures, command_line, embedded_server, log, parser, print_table  # noqa: E402

from galdb.db.connect import connect  # noqa: E402
from galdb.ingest import ingest  # noqa: E402
from galdb.lvm.preprocess import to_tensor  # noqa: E402
from galdb.lvm.specs import load_model  # noqa: E402
from galdb.restore.network import DECODER_WIDTH, from_backbone, restore  # noqa: E402
from galdb.restore.run import run_restoration  # noqa: E402
from galdb.restore.versions import store_version  # noqa: E402
from galdb.sim import simulate_release  # noqa: E402
from galdb.sim.morphology import BANDS  # noqa: E402


def rate(fn, n: int, repeats: int = 2) -> float:
    """Best cutouts/s of ``fn()`` (which handles ``n`` cutouts) over ``repeats`` runs."""
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = max(best, n / (time.perf_counter() - started))
    return best


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(n=512)
    p.add_argument("--model", default="timm:resnet18")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--decoder-width", type=int, default=DECODER_WIDTH)
    args = p.parse_args()
    print(command_line())
    work = Path(tempfile.mkdtemp(prefix="bench-restore-"))
    log(f"simulating {args.n} cutouts")
    simulate_release(work / "release", args.n, args.seed, size=64)
    images = np.stack([f for f in _read_all(work / "release")])
    loaded = load_model(args.model, input_size=64)
    net = from_backbone(loaded, args.decoder_width)
    bands = list(BANDS)
    tensors = torch.stack([to_tensor(im, bands, loaded.preprocessing) for im in images])

    @torch.inference_mode()
    def bare():
        for start in range(0, len(tensors), args.batch):
            loaded.model(tensors[start : start + args.batch])

    log("bare forward")
    bare_rate = rate(bare, args.n)
    log("restore() in memory")
    restore_rate = rate(lambda: restore(net, images, bands, args.batch), args.n)
    with embedded_server(args.home, args.keep) as settings, connect(settings) as conn:
        ingest(conn, work / "release", "bench", catalog=work / "release" / "catalog.csv")
        conn.commit()
        version = store_version(
            conn, net, model_spec=args.model, backbone_sha256=loaded.weights_sha256,
            hyperparameters={}, pairs="", metrics={},
        )  # fmt: skip
        conn.commit()
        log("galdb restore run")
        summary = run_restoration(
            conn, "bench", work / "out", version_id=version.version_id, batch_size=args.batch
        )
        run_rate = summary.restored / summary.seconds
    rows = [
        ("bare backbone forward (pooled)", bare_rate, 1.0),
        ("restoration network, in memory", restore_rate, restore_rate / bare_rate),
        ("galdb restore run (DB + FITS in/out)", run_rate, run_rate / bare_rate),
    ]
    print_table(
        f"{args.model}, decoder width {args.decoder_width}, {args.n} cutouts of 64 px, "
        f"batch {args.batch}, "
        f"{torch.get_num_threads()} threads",
        ["what", "cutouts/s", "ratio to bare"],
        rows,
    )
    figures = Figures("bench_restoration.py")
    for name, value, _ in rows[1:]:
        figures.add(
            name,
            value,
            "cutouts/s",
            reference=bare_rate,
            reference_name=f"bare {args.model} forward, same cutouts",
        )
    figures.write(args.json)


def _read_all(folder: Path):
    from galdb.lvm.pixels import PixelRef, read_pixels

    for path in sorted((folder / "cutouts").glob("*.fits")):
        yield read_pixels(PixelRef(str(path)))


if __name__ == "__main__":
    main()
