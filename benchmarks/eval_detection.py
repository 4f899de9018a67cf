"""Detection: the LVM detector against SEP, photutils and Faster R-CNN, F1 vs training fields.

Simulates (or reuses) a training and a test directory of fields (galdb simulate-fields, seeds
1 and 2), runs :func:`galdb.eval.detection.run_benchmark` for each number of training fields,
writes a CSV and a PNG plot of precision, recall and F1 against the number of training
fields. With ``--real DIR`` the LVM detector trained on the most fields and SEP also run on
the real frames of DIR (../shared/data/real), scored by recall against their pipeline
catalogs (not truth).

    python benchmarks/eval_detection.py --work /tmp/detbench --sizes 30,100,300 \
        --n-test 100 --steps 600 --rcnn-steps 150 --real ../shared/data/real
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import command_line, log, machine  # noqa: E402

from galdb.detect.baselines import sep_detect  # noqa: E402
from galdb.detect.evaluate import MATCH_RADIUS_PX, score_at  # noqa: E402
from galdb.detect.train import TrainConfig, detect_images, train_detector  # noqa: E402
from galdb.eval.detection import COLUMNS, METHODS, DetectionBenchmark, run_benchmark  # noqa: E402
from galdb.lvm.specs import load_model  # noqa: E402
from galdb.sim.fields import simulate_fields  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True, help="directory for fields and results")
    p.add_argument("--sizes", default="30,100,300", help="numbers of training fields")
    p.add_argument("--n-test", type=int, default=100, help="test fields")
    p.add_argument("--field-size", type=int, default=256)
    p.add_argument("--model", default="timm:resnet18", help="LVM spec of the backbone")
    p.add_argument("--steps", type=int, default=600, help="LVM detector training steps")
    p.add_argument("--rcnn-steps", type=int, default=150, help="Faster R-CNN training steps")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--real", type=Path, help="../shared/data/real: also score real frames")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument(
        "--merge", type=Path, nargs="+", help="only plot these result CSVs together into WORK"
    )
    args = p.parse_args(argv)
    if args.merge:
        rows = [r for path in args.merge for r in csv.DictReader(path.open())]
        for r in rows:
            r.update({k: float(r[k]) for k in ("n_train", "precision", "recall", "f1")})
        args.work.mkdir(parents=True, exist_ok=True)
        plot(rows, args.work / "eval_detection.png")
        print(markdown(rows, COLUMNS))
        return 0
    torch.set_num_threads(args.threads)
    sizes = tuple(int(s) for s in args.sizes.split(","))
    methods = tuple(m for m in args.methods.split(",") if m)
    train_dir, test_dir = args.work / "train", args.work / "test"
    log(f"simulating {max(sizes)} training and {args.n_test} test fields (resumable)")
    simulate_fields(train_dir, max(sizes), seed=1, size=args.field_size)
    simulate_fields(test_dir, args.n_test, seed=2, size=args.field_size)
    loaded = load_model(args.model)
    config = TrainConfig(steps=args.steps, batch=args.batch, crop=args.crop)
    bench = DetectionBenchmark(
        str(train_dir), str(test_dir), sizes, methods, config, rcnn_steps=args.rcnn_steps
    )
    rows, kept = [], {}
    out_csv = args.work / "eval_detection.csv"
    with out_csv.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, COLUMNS)
        writer.writeheader()
        for row in run_benchmark(bench, loaded, log, kept):
            rows.append(row)
            writer.writerow(row)
            fh.flush()
    plot(rows, args.work / "eval_detection.png")
    print(f"\n{command_line()}\n{machine()}\nmatching radius {MATCH_RADIUS_PX} px, "
          f"{args.n_test} test fields, backbone {args.model}\n")  # fmt: skip
    print(markdown(rows, COLUMNS))
    if args.real is not None:
        print("\n" + real(args.real, loaded, train_dir, config, max(sizes), kept.get("lvm")))
    log(f"wrote {out_csv} and {args.work / 'eval_detection.png'}")
    return 0


def real(root: Path, loaded, train_dir: Path, config: TrainConfig, n: int, trained=None) -> str:
    """Recall (and number of detections) on the real frames: the LVM detector trained on
    the most fields (trained here if the benchmark did not) and SEP."""
    from galdb.eval.detection_real import real_frames

    if trained is None:
        log(f"training the LVM detector on {n} fields for the real frames")
        config = TrainConfig(**(config.as_dict() | {"n_fields": n}))
        trained = train_detector(loaded, train_dir, config)
    lines = ["| frame | reference | method | detections | matched | recall |", "|---" * 6 + "|"]
    for frame in real_frames(root):
        _, lvm = next(
            detect_images(trained.detector, trained.preprocessing, [frame.field],
                          threshold=trained.threshold)
        )  # fmt: skip
        for name, found in (("lvm", lvm), ("sep", sep_detect(frame.field.pixels))):
            s = score_at([found], [frame.reference], 0.0 if name == "lvm" else -np.inf)
            lines.append(
                f"| {frame.name} | {frame.source} | {name} | {len(found)} | {s.tp} | "
                f"{s.recall:.3f} |"
            )
    return "\n".join(lines)


def markdown(rows: list[dict], columns) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharex=True)
    for ax, metric in zip(axes, ("precision", "recall", "f1"), strict=True):
        for method in dict.fromkeys(r["method"] for r in rows):
            mine = [r for r in rows if r["method"] == method]
            ax.plot([r["n_train"] for r in mine], [r[metric] for r in mine], "o-", label=method)
        ax.set_xscale("log")
        sizes = sorted({int(r["n_train"]) for r in rows})
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
        ax.set_xlabel("training fields")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
