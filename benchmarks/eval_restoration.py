"""Restoration benchmark: PSNR and SSIM of the network against classical baselines.

In one run: simulate training and held-out pairs (``galdb simulate --pairs``; folders are
reused when they already hold enough pairs), train a restoration network on the LVM
backbone ``--model`` on the training pairs (``galdb.restore.train``, as ``galdb restore
train`` does), tune the Gaussian-smoothing and Wiener-filter baselines on training pairs,
then score every method on the held-out pairs against the clean truth. Printed: mean PSNR
and SSIM in flux and in the asinh stretch, ms per cutout, and the network's PSNR gain over
the Wiener filter (target: above it). ``--csv`` keeps the per-image scores.

    python benchmarks/eval_restoration.py --model checkpoint:/work/galdb-eval/ssl-gz2-r18-64.pt \
        --train-dir /tmp/pairs-train --n-train 2000 --test-dir /tmp/pairs-test --n-test 300 \
        --epochs 5 --csv restoration.csv
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import LogProgress, command_line, log, machine, print_table, verdict  # noqa: E402

from galdb.lvm.specs import load_model  # noqa: E402
from galdb.restore import evaluate as ev  # noqa: E402
from galdb.restore.network import from_backbone  # noqa: E402
from galdb.restore.pairs import load_pairs  # noqa: E402
from galdb.restore.train import TrainConfig, split, train  # noqa: E402
from galdb.sim.pairs import PAIRS_INDEX, simulate_pairs  # noqa: E402


def ensure_pairs(folder: Path, n: int, seed: int, size: int) -> None:
    index = folder / PAIRS_INDEX
    if index.exists() and sum(1 for _ in index.open()) - 1 >= n:
        log(f"reusing {folder}")
        return
    log(f"simulating {n} pairs (seed {seed}) into {folder}")
    simulate_pairs(folder, n, seed, size=size)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="timm:resnet18", help="LVM backbone spec")
    p.add_argument("--train-dir", type=Path, required=True)
    p.add_argument("--test-dir", type=Path, required=True)
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--n-test", type=int, default=300)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--decoder-width", type=int, default=32)
    p.add_argument("--tune", type=int, default=100, help="training pairs the baselines tune on")
    p.add_argument("--csv", type=Path, help="write per-image scores here")
    args = p.parse_args()
    print(command_line())
    log(machine())
    ensure_pairs(args.train_dir, args.n_train, 1, args.size)
    ensure_pairs(args.test_dir, args.n_test, 2, args.size)
    pairs, test = load_pairs(args.train_dir, args.n_train), load_pairs(args.test_dir, args.n_test)
    loaded = load_model(args.model)
    net = from_backbone(loaded, args.decoder_width)
    config = TrainConfig(args.epochs, args.batch_size, args.lr)
    started = time.perf_counter()
    metrics = train(net, pairs, config, LogProgress("train"))
    log(f"trained {args.model} in {time.perf_counter() - started:.0f} s: {metrics}")
    train_idx, _ = split(len(pairs), config.val_fraction, config.seed)
    methods = ev.tuned_baselines(pairs.subset(train_idx[: args.tune]))
    methods["network"] = ev.network_restorer(net)
    results = ev.evaluate(test, methods)
    if args.csv:
        ev.write_csv(args.csv, test, results)
        log(f"per-image scores in {args.csv}")
    print_table(
        f"{len(test)} held-out pairs ({args.test_dir}); network: {args.model}, "
        f"{metrics['n_train']} training pairs, {args.epochs} epochs, decoder width "
        f"{args.decoder_width}",
        ev.SUMMARY_COLUMNS,
        ev.summary_rows(results, len(test)),
    )
    by_name = {r.method.split("(")[0]: r for r in results}
    gain = by_name["network"].mean("psnr") - by_name["wiener"].mean("psnr")
    print(f"\nnetwork PSNR - Wiener PSNR (flux): {gain:+.2f} dB  target > 0: {verdict(gain > 0)}")


if __name__ == "__main__":
    main()
