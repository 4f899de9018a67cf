"""Train galdb's default encoder (``galdb:default``) from scratch, reproducibly.

Only galdb's own GalSim simulations are used (redistributable); never the real labelled sets,
which are for internal evaluation only and must stay unseen by the shipped weights.

Steps, all in a scratch galdb home (``--home``; an embedded server of its own):

1. ``galdb simulate``: ``--n`` galaxies with ``--seed`` (the five classes elliptical,
   lenticular, spiral, edge_on, merger), ingested as release ``default-encoder-sims``;
2. ``galdb lvm pretrain`` through its library call: SimCLR, resnet10t, 64 px, ``--minutes``
   of training, with the domain-bridging augmentation (:data:`galdb.lvm.augment.DOMAIN_BRIDGE`)
   unless ``--augment standard``;
3. the checkpoint converted to float16 (:func:`galdb.lvm.builtin.write_builtin`) with the data,
   recipe and compute in its metadata, written to ``--out`` (default: the package file);
4. sha256, size, steps and CPU time printed.

Usage, from the repository root with the virtual environment active::

    python scripts/train_default_encoder.py --home /tmp/galdb-default --n 8000 --minutes 50

A rerun with the same home reuses the simulation and the ingest (both idempotent) and resumes
an unfinished pretraining (``--resume``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import resource
import subprocess
import time
from pathlib import Path

import torch

from galdb.db import admin
from galdb.db.connect import connect
from galdb.db.settings import Settings
from galdb.ingest import ingest
from galdb.lvm.augment import DOMAIN_BRIDGE, Augment
from galdb.lvm.builtin import builtin_path, write_builtin
from galdb.lvm.pretrain import PretrainConfig, pretrain
from galdb.sim import CLASSES, simulate_release

RELEASE = "default-encoder-sims"
AUGMENTS = {"bridge": DOMAIN_BRIDGE, "standard": Augment()}


class Printer:
    """Progress as a line every ``every`` seconds (the run is long and unattended)."""

    def __init__(self, every: float = 30.0):
        self.every, self.total, self.done, self.what = every, None, 0, ""
        self.t0 = self.last = time.perf_counter()

    def start(self, total, description=""):
        self.total, self.done, self.what = total, 0, description
        self.t0 = self.last = time.perf_counter()

    def advance(self, n=1):
        self.done += n
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            print(f"[{now - self.t0:7.0f}s] {self.what}: {self.done}/{self.total}", flush=True)


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (user + system)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="scratch galdb home")
    parser.add_argument("--n", type=int, default=8000, help="galaxies to simulate")
    parser.add_argument("--seed", type=int, default=2026, help="simulation and training seed")
    parser.add_argument("--size", type=int, default=96, help="simulated cutout side, px")
    parser.add_argument("--minutes", type=float, default=50.0, help="pretraining budget")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=10_000, help="epoch cap (default: time)")
    parser.add_argument("--max-images", type=int, default=200_000, help="cutouts drawn per run")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--augment", choices=sorted(AUGMENTS), default="bridge")
    parser.add_argument("--out", type=Path, default=builtin_path("default"))
    parser.add_argument("--resume", action="store_true", help="continue an unfinished run")
    args = parser.parse_args()

    wall0, cpu0 = time.perf_counter(), cpu_seconds()
    commit = git_commit()  # the code the run starts from (HEAD may move while it trains)
    settings = Settings.from_env(args.home)
    admin.init(settings)
    sims = args.home / f"sims-n{args.n}-seed{args.seed}-{args.size}px"
    printer = Printer()
    sim_cpu = None  # None: the simulation of an earlier run was reused
    if not (sims / "catalog.csv").exists():
        printer.start(args.n, "simulate")
        simulate_release(sims, args.n, args.seed, size=args.size, progress=printer.advance)
        sim_cpu = round(cpu_seconds() - cpu0, 1)
    print(f"{args.n} simulated galaxies in {sims} (simulation CPU s: {sim_cpu})", flush=True)

    checkpoint = args.home / f"ssl-{args.augment}.pt"
    cfg = PretrainConfig(
        arch="resnet10t",
        method="simclr",
        input_size=64,
        batch_size=args.batch_size,
        epochs=args.epochs,  # by default the time budget ends the run
        max_images=args.max_images,
        minutes=args.minutes,
        seed=args.seed,
        threads=args.threads,
        releases=(RELEASE,),
        augment=AUGMENTS[args.augment],
        device="cpu",
    )
    with connect(settings) as conn:
        ingest(conn, sims, RELEASE, catalog=sims / "catalog.csv", survey="galdb-sim")
        conn.commit()
        train_cpu0 = cpu_seconds()
        summary = pretrain(conn, cfg, checkpoint, printer, resume=args.resume)
    train_cpu = cpu_seconds() - train_cpu0
    meta = {
        "data": {
            "source": "galdb simulate (GalSim mock DESI Legacy Surveys DR9-like g,r,z cutouts)",
            "galaxies": args.n,
            "seed": args.seed,
            "cutout_px": args.size,
            "classes": list(CLASSES),
            "labels_used": "none (self-supervised)",
            "real_data": "none: the real labelled sets are internal-only and stay unseen",
        },
        "recipe": {
            "method": cfg.method,
            "arch": cfg.arch,
            "input_size": cfg.input_size,
            "augment": args.augment,
            "pretrain_config": cfg.to_dict(),
        },
        "compute": {
            "steps": summary.steps,
            "epochs": summary.epochs,
            "train_seconds": round(summary.seconds, 1),
            "train_cpu_seconds": round(train_cpu, 1),
            "simulate_cpu_seconds": sim_cpu,
            "device": summary.device,
            "torch_threads": torch.get_num_threads(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
            "torch": str(torch.__version__),  # a TorchVersion would need weights_only=False
            "load_average_at_end": os.getloadavg(),
            "complete": summary.complete,
        },
        "final_loss": summary.losses[-1] if summary.losses else None,
        "galdb_commit": commit,
    }
    out = write_builtin(checkpoint, args.out, meta)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"wrote {out}: {out.stat().st_size / 2**20:.2f} MiB, sha256 {digest}")
    losses = f"{summary.losses[0]:.3f} -> {summary.losses[-1]:.3f}" if summary.losses else "-"
    print(
        f"steps {summary.steps} ({summary.epochs} epochs of {summary.images} cutouts, batch "
        f"{args.batch_size}); pretraining {summary.seconds / 60:.1f} min wall, "
        f"{train_cpu / 60:.1f} CPU min; whole script {(time.perf_counter() - wall0) / 60:.1f} "
        f"min wall, {(cpu_seconds() - cpu0) / 60:.1f} CPU min; loss "
        f"{losses}; load average {os.getloadavg()}"
    )


if __name__ == "__main__":
    main()
