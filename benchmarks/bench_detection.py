"""Detection throughput: fields per second of the LVM detector against SEP and photutils on
the same fields, measured in one run (reading the FITS files included for every method).

The detector is trained briefly first (``--steps``) so that its decoding sees a realistic
number of peaks; its speed does not depend on how well it is trained otherwise.

    python benchmarks/bench_detection.py --work /tmp/detbench --n 100 --threads 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch  # noqa: E402
from _common import Figures, command_line, log, machine  # noqa: E402

from galdb.detect.baselines import photutils_detect, sep_detect  # noqa: E402
from galdb.detect.fields import field_paths, read_field  # noqa: E402
from galdb.detect.train import TrainConfig, detect, train_detector  # noqa: E402
from galdb.lvm.specs import load_model  # noqa: E402
from galdb.sim.fields import simulate_fields  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True, help="fields are written to WORK/test")
    p.add_argument("--n", type=int, default=100, help="fields to detect in")
    p.add_argument("--model", default="timm:resnet18")
    p.add_argument("--steps", type=int, default=50, help="brief training before timing")
    p.add_argument("--batch", type=int, default=4, help="fields per forward pass")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--json", type=Path, help="also write the headline figures here (run_all.py)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    directory = args.work / "test"
    simulate_fields(directory, args.n, seed=2)
    paths = field_paths(directory)[: args.n]
    log(f"training {args.model} briefly ({args.steps} steps)")
    trained = train_detector(load_model(args.model), directory, TrainConfig(steps=args.steps))
    timings = {}
    started = time.perf_counter()
    n_lvm = sum(
        len(rows)
        for _, rows in detect(
            trained.detector, trained.preprocessing, paths, threshold=trained.threshold,
            batch=args.batch,
        )
    )  # fmt: skip
    timings["lvm"] = (time.perf_counter() - started, n_lvm)
    for name, fn in (("sep", sep_detect), ("photutils", photutils_detect)):
        started = time.perf_counter()
        found = sum(len(fn(read_field(p).pixels)) for p in paths)
        timings[name] = (time.perf_counter() - started, found)
    print(f"\n{command_line()}\n{machine()}\n{len(paths)} fields of 256x256x3, torch threads "
          f"{args.threads}, batch {args.batch}\n")  # fmt: skip
    print("| method | seconds | fields/s | detections | SEP time / method time |")
    print("|---|---|---|---|---|")
    for name, (seconds, found) in timings.items():
        ratio = timings["sep"][0] / seconds
        print(f"| {name} | {seconds:.2f} | {len(paths) / seconds:.1f} | {found} | {ratio:.2f} |")
    figures = Figures("bench_detection.py")
    sep_rate = len(paths) / timings["sep"][0]
    for name in ("lvm", "photutils"):
        seconds, found = timings[name]
        figures.add(
            f"{name} detection, {len(paths)} fields of 256x256x3",
            len(paths) / seconds,
            "fields/s",
            reference=sep_rate,
            reference_name="SEP on the same fields",
            note=f"{found} detections",
        )
    figures.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
